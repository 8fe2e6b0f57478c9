# PyTorch references for the tagger and token-loss tests, written from the
# published algorithms, not from finetorch's code:
#   - the linear-chain CRF log-likelihood and Viterbi as pytorch-crf
#     (torchcrf.CRF, time-first: _compute_score, _compute_normalizer,
#     _viterbi_decode);
#   - the softmax focal loss (Lin et al.) per token, with ignore_index and
#     per-class alpha;
#   - a BiLSTM-CRF tagger (embedding -> LSTM on packed sequences -> dropout ->
#     Linear -> CRF) and a BERT(+BiLSTM)+CRF tagger (transformers' BertModel).
# Reads one JSON job on stdin, writes one JSON result on stdout. Tensors are
# {"shape": [...], "data": [flat values]}.
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def tensor(e, dtype=torch.float64):
    return torch.tensor(e["data"], dtype=dtype).reshape(e["shape"])


def enc(t):
    t = t.detach()
    return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}


def crf_log_likelihood(em, tags, mask, start, end, trans, reduction):
    """pytorch-crf's CRF.forward on time-first inputs: em [T,B,K], tags [T,B], mask bool [T,B]."""
    T, B, K = em.shape
    tags = torch.where(mask, tags, torch.zeros_like(tags))  # pytorch-crf indexes every position
    m = mask.to(em.dtype)
    batch = torch.arange(B)
    score = start[tags[0]] + em[0, batch, tags[0]]
    for i in range(1, T):
        score = score + trans[tags[i - 1], tags[i]] * m[i]
        score = score + em[i, batch, tags[i]] * m[i]
    ends = mask.long().sum(0) - 1
    score = score + end[tags[ends, batch]]
    alpha = start + em[0]
    for i in range(1, T):
        nxt = torch.logsumexp(alpha.unsqueeze(2) + trans + em[i].unsqueeze(1), dim=1)
        alpha = torch.where(mask[i].unsqueeze(1), nxt, alpha)
    norm = torch.logsumexp(alpha + end, dim=1)
    llh = score - norm
    if reduction == "none":
        return llh
    if reduction == "sum":
        return llh.sum()
    if reduction == "mean":
        return llh.mean()
    return llh.sum() / m.sum()


def viterbi(em, mask, start, end, trans):
    """pytorch-crf's _viterbi_decode: the best path of each sequence, trimmed to its length."""
    T, B, K = em.shape
    score = start + em[0]
    history = []
    for i in range(1, T):
        nxt, idx = (score.unsqueeze(2) + trans + em[i].unsqueeze(1)).max(dim=1)
        score = torch.where(mask[i].unsqueeze(1), nxt, score)
        history.append(idx)
    score = score + end
    ends = mask.long().sum(0) - 1
    paths = []
    for b in range(B):
        best = [int(score[b].argmax())]
        for h in reversed(history[: int(ends[b])]):
            best.append(int(h[b][best[-1]]))
        paths.append(list(reversed(best)))
    return paths


def focal(logits, target, gamma, alpha, ignore_index, reduction):
    """Softmax focal loss per position: -alpha[t] (1 - p_t)^gamma log p_t; logits [..., K], target [...]."""
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target))
    logp = F.log_softmax(logits, dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    loss = -((1 - logp.exp()) ** gamma) * logp
    if isinstance(alpha, list):
        loss = loss * torch.tensor(alpha, dtype=logits.dtype)[safe]
    elif alpha is not None:
        loss = loss * alpha
    loss = loss * keep.to(logits.dtype)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / keep.sum().clamp(min=1)


class CRF(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.start_transitions = nn.Parameter(torch.zeros(k))
        self.end_transitions = nn.Parameter(torch.zeros(k))
        self.transitions = nn.Parameter(torch.zeros(k, k))

    def forward(self, em_bf, tags_bf, mask_bf, reduction):
        # batch-first in, time-first inside (pytorch-crf with batch_first=True)
        return crf_log_likelihood(
            em_bf.transpose(0, 1), tags_bf.transpose(0, 1), mask_bf.transpose(0, 1),
            self.start_transitions, self.end_transitions, self.transitions, reduction)

    def decode(self, em_bf, mask_bf):
        return viterbi(em_bf.transpose(0, 1), mask_bf.transpose(0, 1),
                       self.start_transitions, self.end_transitions, self.transitions)


def packed_lstm(lstm, x, mask):
    lengths = mask.long().sum(1)
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


class BiLSTMCRF(nn.Module):
    def __init__(self, vocab, tags, emb, hidden, layers, padding_idx):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=padding_idx)
        self.lstm = nn.LSTM(emb, hidden, num_layers=layers, bidirectional=True, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.classifier = nn.Linear(2 * hidden, tags)
        self.crf = CRF(tags)

    def forward(self, ids, mask):
        return self.classifier(self.dropout(packed_lstm(self.lstm, self.embedding(ids), mask)))


class BertTagger(nn.Module):
    def __init__(self, config, tags, head, lstm_hidden):
        super().__init__()
        from transformers import BertConfig, BertModel

        self.bert = BertModel(BertConfig(**config), add_pooling_layer=False)
        self.dropout = nn.Dropout(0.0)
        self.head = head
        hidden = config["hidden_size"]
        if head == "bilstm-crf":
            self.lstm = nn.LSTM(hidden, lstm_hidden, bidirectional=True, batch_first=True)
        self.classifier = nn.Linear(2 * lstm_hidden if head == "bilstm-crf" else hidden, tags)
        if head != "linear":
            self.crf = CRF(tags)

    def forward(self, ids, attention_mask, first_piece):
        h = self.bert(input_ids=ids, attention_mask=attention_mask).last_hidden_state
        mask = first_piece >= 0
        idx = first_piece.clamp(min=0).unsqueeze(-1).expand(-1, -1, h.shape[-1])
        words = h.gather(1, idx) * mask.unsqueeze(-1).to(h.dtype)
        x = self.dropout(words)
        if self.head == "bilstm-crf":
            x = self.dropout(packed_lstm(self.lstm, x, mask))
        return self.classifier(x), mask


def load_params(model, params, dtype):
    sd = {k: tensor(v, dtype) for k, v in params.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    return {"missing": list(missing), "unexpected": list(unexpected)}


def grads(model):
    return {n: enc(p.grad) for n, p in model.named_parameters() if p.grad is not None}


def main():
    job = json.load(sys.stdin)
    kind = job["job"]
    dtype = torch.float64 if job.get("dtype") == "float64" else torch.float32
    out = {}
    if kind == "focal":
        x = tensor(job["logits"], dtype).requires_grad_(True)
        t = tensor(job["target"], torch.int64)
        results = []
        for c in job["cases"]:
            x.grad = None
            loss = focal(x, t, c["gamma"], c["alpha"], c.get("ignoreIndex", -100), c["reduction"])
            loss.sum().backward()
            results.append({"loss": enc(loss), "grad": enc(x.grad)})
        ce = F.cross_entropy(x.reshape(-1, x.shape[-1]), t.reshape(-1), ignore_index=-100)
        out = {"cases": results, "crossEntropy": ce.item()}
    elif kind == "crfLoss":
        em = tensor(job["emissions"], dtype).requires_grad_(True)
        tags = tensor(job["tags"], torch.int64)
        mask = tags != -100
        crf = CRF(em.shape[-1]).to(dtype)
        load_params(crf, job["crf"], dtype)
        results = []
        for c in job["cases"]:
            em.grad = None
            crf.zero_grad()
            red = c["reduction"]
            nll = -crf(em, tags, mask, red)
            if c.get("focalWeight"):
                tok = focal(em, torch.where(mask, tags, torch.full_like(tags, -100)), c.get("gamma", 2), c.get("alpha"), -100, "none")
                per_seq = tok.sum(1)
                term = {"none": per_seq, "sum": per_seq.sum(), "mean": per_seq.mean(), "token_mean": per_seq.sum() / mask.sum()}[red]
                nll = nll + c["focalWeight"] * term
            nll.sum().backward()
            results.append({"loss": enc(nll), "grad": enc(em.grad), "crfGrads": grads(crf)})
        out = {"cases": results, "decode": crf.decode(em.detach(), mask)}
    elif kind in ("bilstmCrf", "bertTagger"):
        if kind == "bilstmCrf":
            c = job["options"]
            model = BiLSTMCRF(c["vocabSize"], c["numTags"], c["embeddingDim"], c["hiddenSize"], c["numLayers"], c["paddingIdx"]).to(dtype)
        else:
            c = job["options"]
            model = BertTagger(job["config"], c["numTags"], c["head"], c.get("lstmHiddenSize", 0)).to(dtype)
        out["load"] = load_params(model, job["params"], dtype)
        out["names"] = [n for n, _ in model.named_parameters()]
        model.eval()
        ids = tensor(job["inputIds"], torch.int64)
        tags = tensor(job["tags"], torch.int64)
        if kind == "bilstmCrf":
            mask = ids != c["paddingIdx"]
            em = model(ids, mask)
        else:
            em, mask = model(ids, tensor(job["attentionMask"], torch.int64), tensor(job["firstPieceIndex"], torch.int64))
        out["emissions"] = enc(em)
        if hasattr(model, "crf"):
            nll = -model.crf(em, tags, mask, "mean")
            out["decode"] = model.crf.decode(em.detach(), mask)
        else:
            flat = em.reshape(-1, em.shape[-1])
            nll = F.cross_entropy(flat, tags.reshape(-1), ignore_index=-100)
        nll.backward()
        out["loss"] = nll.item()
        out["grads"] = grads(model)
    else:
        raise SystemExit(f"unknown job {kind}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
