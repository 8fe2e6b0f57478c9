// ops: torchvision.ops' detection operators, camelCased
//   import { ops } from 'finetorch'; ops.roiAlign(features, boxes, 7, { spatialScale: 1 / 16, samplingRatio: 2 })
import { roiAlign, MultiScaleRoIAlign } from './roi-align.js';
import { nms, batchedNms, boxArea, boxIou, clipBoxesToImage, removeSmallBoxes } from './boxes.js';

export type { RoiAlignOptions, OpsImplementation, MultiScaleRoIAlignOptions } from './roi-align.js';
export type { MultiScaleRoIAlign } from './roi-align.js';
export type { NmsOptions } from './boxes.js';

export const ops = { roiAlign, MultiScaleRoIAlign, nms, batchedNms, boxArea, boxIou, clipBoxesToImage, removeSmallBoxes };
