"""An independent re-implementation of pycocotools' COCOeval (iouType 'bbox',
useCats 1, no crowd), the reference for test/metrics/detection.test.ts
(pycocotools itself is not installable here). Written after pycocotools
2.0's cocoeval.py structure: evaluateImg per (category, area range, image),
accumulate into precision[T, R, K, A, M] / recall[T, K, A, M] numpy arrays
initialised to -1, summarize by averaging the entries > -1. Boxes go in as
xyxy, are turned into COCO's xywh and back for the IoU as maskApi's bbIou
does (no +1).

stdin: {"cases": [{"images": [{"gt": [{"box", "label", "area"?}],
                               "dt": [{"box", "label", "score"}]}],
                   "iouThrs"?: [...], "maxDets"?: [a, b, c]}]}
stdout: {"iouThrs", "recThrs" (Params' arrays as numpy builds them), "results": one per
        case: {"stats": [12 numbers as COCOeval.stats], "perClass": [{"label", "ap",
        "ap50", "ap75", "ar100"}], "summary": the lines summarize() prints}}
"""
import json
import sys

import numpy as np


def bb_iou(d, g):
    # maskApi.c bbIou on xywh boxes, iscrowd 0
    dx, dy, dw, dh = d
    gx, gy, gw, gh = g
    w = min(dw + dx, gw + gx) - max(dx, gx)
    if w <= 0:
        return 0.0
    h = min(dh + dy, gh + gy) - max(dy, gy)
    if h <= 0:
        return 0.0
    i = w * h
    return i / (dw * dh + gw * gh - i)


class Eval:
    def __init__(self, images, iou_thrs=None, max_dets=None):
        self.iouThrs = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True) if iou_thrs is None else np.array(iou_thrs)
        self.recThrs = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
        self.maxDets = [1, 10, 100] if max_dets is None else max_dets
        self.areaRng = [[0 ** 2, 1e5 ** 2], [0 ** 2, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]]
        self.imgIds = list(range(len(images)))
        self.gts, self.dts = {}, {}
        cats = set()
        ann_id = 1
        for img_id, im in enumerate(images):
            for g in im['gt']:
                x1, y1, x2, y2 = g['box']
                bbox = [x1, y1, x2 - x1, y2 - y1]
                area = g['area'] if 'area' in g else bbox[2] * bbox[3]
                self.gts.setdefault((img_id, g['label']), []).append({'id': ann_id, 'bbox': bbox, 'area': area, 'ignore': 0, 'iscrowd': 0})
                ann_id += 1
                cats.add(g['label'])
            for d in im['dt']:
                x1, y1, x2, y2 = d['box']
                bbox = [x1, y1, x2 - x1, y2 - y1]
                self.dts.setdefault((img_id, d['label']), []).append({'id': ann_id, 'bbox': bbox, 'area': bbox[2] * bbox[3], 'score': d['score']})
                ann_id += 1
                cats.add(d['label'])
        self.catIds = sorted(cats)

    def computeIoU(self, imgId, catId):
        gt = self.gts.get((imgId, catId), [])
        dt = self.dts.get((imgId, catId), [])
        if len(gt) == 0 and len(dt) == 0:
            return []
        inds = np.argsort([-d['score'] for d in dt], kind='mergesort')
        dt = [dt[i] for i in inds]
        if len(dt) > self.maxDets[-1]:
            dt = dt[0:self.maxDets[-1]]
        return np.array([[bb_iou(d['bbox'], g['bbox']) for g in gt] for d in dt]).reshape(len(dt), len(gt))

    def evaluateImg(self, imgId, catId, aRng, maxDet):
        gt = self.gts.get((imgId, catId), [])
        dt = self.dts.get((imgId, catId), [])
        if len(gt) == 0 and len(dt) == 0:
            return None
        for g in gt:
            g['_ignore'] = 1 if (g['ignore'] or g['area'] < aRng[0] or g['area'] > aRng[1]) else 0
        gtind = np.argsort([g['_ignore'] for g in gt], kind='mergesort')
        gt = [gt[i] for i in gtind]
        dtind = np.argsort([-d['score'] for d in dt], kind='mergesort')
        dt = [dt[i] for i in dtind[0:maxDet]]
        ious = self.ious[imgId, catId][:, gtind] if len(self.ious[imgId, catId]) > 0 else self.ious[imgId, catId]
        T = len(self.iouThrs)
        G = len(gt)
        D = len(dt)
        gtm = np.zeros((T, G))
        dtm = np.zeros((T, D))
        gtIg = np.array([g['_ignore'] for g in gt])
        dtIg = np.zeros((T, D))
        if not len(ious) == 0:
            for tind, t in enumerate(self.iouThrs):
                for dind, d in enumerate(dt):
                    iou = min([t, 1 - 1e-10])
                    m = -1
                    for gind, g in enumerate(gt):
                        if gtm[tind, gind] > 0:
                            continue
                        if m > -1 and gtIg[m] == 0 and gtIg[gind] == 1:
                            break
                        if ious[dind, gind] < iou:
                            continue
                        iou = ious[dind, gind]
                        m = gind
                    if m == -1:
                        continue
                    dtIg[tind, dind] = gtIg[m]
                    dtm[tind, dind] = gt[m]['id']
                    gtm[tind, m] = d['id']
        a = np.array([d['area'] < aRng[0] or d['area'] > aRng[1] for d in dt]).reshape((1, len(dt)))
        dtIg = np.logical_or(dtIg, np.logical_and(dtm == 0, np.repeat(a, T, 0)))
        return {'dtMatches': dtm, 'dtScores': [d['score'] for d in dt], 'gtIgnore': gtIg, 'dtIgnore': dtIg}

    def evaluate(self):
        self.ious = {(imgId, catId): self.computeIoU(imgId, catId) for imgId in self.imgIds for catId in self.catIds}
        self.evalImgs = [self.evaluateImg(imgId, catId, areaRng, self.maxDets[-1])
                         for catId in self.catIds for areaRng in self.areaRng for imgId in self.imgIds]

    def accumulate(self):
        T, R, K, A, M = len(self.iouThrs), len(self.recThrs), len(self.catIds), len(self.areaRng), len(self.maxDets)
        precision = -np.ones((T, R, K, A, M))
        recall = -np.ones((T, K, A, M))
        I0, A0 = len(self.imgIds), len(self.areaRng)
        for k in range(K):
            Nk = k * A0 * I0
            for a in range(A):
                Na = a * I0
                for m, maxDet in enumerate(self.maxDets):
                    E = [self.evalImgs[Nk + Na + i] for i in range(I0)]
                    E = [e for e in E if e is not None]
                    if len(E) == 0:
                        continue
                    dtScores = np.concatenate([e['dtScores'][0:maxDet] for e in E])
                    inds = np.argsort(-dtScores, kind='mergesort')
                    dtm = np.concatenate([e['dtMatches'][:, 0:maxDet] for e in E], axis=1)[:, inds]
                    dtIg = np.concatenate([e['dtIgnore'][:, 0:maxDet] for e in E], axis=1)[:, inds]
                    gtIg = np.concatenate([e['gtIgnore'] for e in E])
                    npig = np.count_nonzero(gtIg == 0)
                    if npig == 0:
                        continue
                    tps = np.logical_and(dtm, np.logical_not(dtIg))
                    fps = np.logical_and(np.logical_not(dtm), np.logical_not(dtIg))
                    tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
                    fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
                    for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum)):
                        tp = np.array(tp)
                        fp = np.array(fp)
                        nd = len(tp)
                        rc = tp / npig
                        pr = tp / (fp + tp + np.spacing(1))
                        q = np.zeros((R,))
                        recall[t, k, a, m] = rc[-1] if nd else 0
                        pr = pr.tolist()
                        q = q.tolist()
                        for i in range(nd - 1, 0, -1):
                            if pr[i] > pr[i - 1]:
                                pr[i - 1] = pr[i]
                        inds = np.searchsorted(rc, self.recThrs, side='left')
                        try:
                            for ri, pi in enumerate(inds):
                                q[ri] = pr[pi]
                        except IndexError:
                            pass
                        precision[t, :, k, a, m] = np.array(q)
        self.precision, self.recall = precision, recall

    def _summarize(self, ap=1, iouThr=None, areaRng='all', maxDets=100, cat=None):
        aind = [i for i, aRng in enumerate(['all', 'small', 'medium', 'large']) if aRng == areaRng]
        mind = [i for i, mDet in enumerate(self.maxDets) if mDet == maxDets]
        if ap == 1:
            s = self.precision
            if iouThr is not None:
                t = np.where(iouThr == self.iouThrs)[0]
                s = s[t]
            s = s[:, :, :, aind, mind]
            if cat is not None:
                s = s[:, :, cat]
        else:
            s = self.recall
            if iouThr is not None:
                t = np.where(iouThr == self.iouThrs)[0]
                s = s[t]
            s = s[:, :, aind, mind]
            if cat is not None:
                s = s[:, cat]
        if len(s[s > -1]) == 0:
            return -1.0
        return float(np.mean(s[s > -1]))

    def summarize(self):
        md = self.maxDets
        stats = [
            self._summarize(1, maxDets=md[2]),
            self._summarize(1, iouThr=.5, maxDets=md[2]),
            self._summarize(1, iouThr=.75, maxDets=md[2]),
            self._summarize(1, areaRng='small', maxDets=md[2]),
            self._summarize(1, areaRng='medium', maxDets=md[2]),
            self._summarize(1, areaRng='large', maxDets=md[2]),
            self._summarize(0, maxDets=md[0]),
            self._summarize(0, maxDets=md[1]),
            self._summarize(0, maxDets=md[2]),
            self._summarize(0, areaRng='small', maxDets=md[2]),
            self._summarize(0, areaRng='medium', maxDets=md[2]),
            self._summarize(0, areaRng='large', maxDets=md[2]),
        ]
        per_class = [{
            'label': c,
            'ap': self._summarize(1, maxDets=md[2], cat=k),
            'ap50': self._summarize(1, iouThr=.5, maxDets=md[2], cat=k),
            'ap75': self._summarize(1, iouThr=.75, maxDets=md[2], cat=k),
            'ar100': self._summarize(0, maxDets=md[2], cat=k),
        } for k, c in enumerate(self.catIds)]
        # the lines summarize() prints, in its format
        iStr = ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'
        rows = [(1, None, 'all', md[2]), (1, .5, 'all', md[2]), (1, .75, 'all', md[2]), (1, None, 'small', md[2]),
                (1, None, 'medium', md[2]), (1, None, 'large', md[2]), (0, None, 'all', md[0]), (0, None, 'all', md[1]),
                (0, None, 'all', md[2]), (0, None, 'small', md[2]), (0, None, 'medium', md[2]), (0, None, 'large', md[2])]
        lines = []
        for (ap, iouThr, areaRng, maxDets), value in zip(rows, stats):
            titleStr = 'Average Precision' if ap == 1 else 'Average Recall'
            typeStr = '(AP)' if ap == 1 else '(AR)'
            iouStr = '{:0.2f}:{:0.2f}'.format(self.iouThrs[0], self.iouThrs[-1]) if iouThr is None else '{:0.2f}'.format(iouThr)
            lines.append(iStr.format(titleStr, typeStr, iouStr, areaRng, maxDets, value))
        return stats, per_class, '\n'.join(lines)


def main():
    out = []
    for case in json.load(sys.stdin)['cases']:
        e = Eval(case['images'], case.get('iouThrs'), case.get('maxDets'))
        e.evaluate()
        e.accumulate()
        stats, per_class, summary = e.summarize()
        out.append({'stats': stats, 'perClass': per_class, 'summary': summary})
    params = Eval([])
    json.dump({'iouThrs': params.iouThrs.tolist(), 'recThrs': params.recThrs.tolist(), 'results': out}, sys.stdout)


if __name__ == '__main__':
    main()
