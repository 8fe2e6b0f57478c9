#!/usr/bin/python3
"""The PyTorch side of the tagger benchmark (bench/tagger.mjs drives it).

Usage: /usr/bin/python3 bench/tagger_torch.py DATA.json 'JSON-OPTIONS'
Trains BERT + BiLSTM + CRF as one writes it in PyTorch: Hugging Face's BERT
layout and eager attention (Debian's python3-torch 1.13 has no transformers,
so the encoder is written out here with the same modules and names), the
encoder's output gathered at each word's first piece, nn.LSTM on a packed
sequence (options.torchLstm 'packed', the default; 'padded' runs it on the
padded batch, faster but padding then changes short sequences), a Linear, and pytorch-crf's CRF algorithm (its per-timestep loops),
AdamW with the encoder at 2e-5 and the head at 1e-3. Prints one JSON line:
the seconds of each timed step.
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=0)
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=1e-12)
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, ids):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(torch.zeros_like(ids))
        return self.dropout(self.LayerNorm(x))


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.dropout = nn.Dropout(c["attention_probs_dropout_prob"])

    def forward(self, x, bias):
        B, S, H = x.shape
        split = lambda t: t.view(B, S, self.heads, H // self.heads).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(H // self.heads) + bias
        ctx = self.dropout(scores.softmax(-1)) @ v
        return ctx.transpose(1, 2).reshape(B, S, H)


class DenseNorm(nn.Module):
    def __init__(self, inp, out, p):
        super().__init__()
        self.dense = nn.Linear(inp, out)
        self.LayerNorm = nn.LayerNorm(out, eps=1e-12)
        self.dropout = nn.Dropout(p)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = SelfAttention(c)
        self.output = DenseNorm(c["hidden_size"], c["hidden_size"], c["hidden_dropout_prob"])

    def forward(self, x, bias):
        return self.output(self.self(x, bias), x)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x):
        return F.gelu(self.dense(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = DenseNorm(c["intermediate_size"], c["hidden_size"], c["hidden_dropout_prob"])

    def forward(self, x, bias):
        a = self.attention(x, bias)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])


class Bert(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)

    def forward(self, ids, attention_mask):
        bias = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        x = self.embeddings(ids)
        for layer in self.encoder.layer:
            x = layer(x, bias)
        return x


class CRF(nn.Module):
    """pytorch-crf's torchcrf.CRF (batch_first), its algorithm as published."""

    def __init__(self, k):
        super().__init__()
        self.start_transitions = nn.Parameter(torch.empty(k).uniform_(-0.1, 0.1))
        self.end_transitions = nn.Parameter(torch.empty(k).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(k, k).uniform_(-0.1, 0.1))

    def forward(self, emissions, tags, mask):
        emissions, tags, mask = emissions.transpose(0, 1), tags.transpose(0, 1), mask.transpose(0, 1)
        return (self._score(emissions, tags, mask) - self._normalizer(emissions, mask)).mean()

    def _score(self, emissions, tags, mask):
        T, B = tags.shape
        m = mask.float()
        batch = torch.arange(B)
        score = self.start_transitions[tags[0]] + emissions[0, batch, tags[0]]
        for i in range(1, T):
            score = score + self.transitions[tags[i - 1], tags[i]] * m[i] + emissions[i, batch, tags[i]] * m[i]
        ends = mask.long().sum(0) - 1
        return score + self.end_transitions[tags[ends, batch]]

    def _normalizer(self, emissions, mask):
        score = self.start_transitions + emissions[0]
        for i in range(1, emissions.shape[0]):
            nxt = torch.logsumexp(score.unsqueeze(2) + self.transitions + emissions[i].unsqueeze(1), dim=1)
            score = torch.where(mask[i].unsqueeze(1), nxt, score)
        return torch.logsumexp(score + self.end_transitions, dim=1)


class BertBiLstmCrf(nn.Module):
    def __init__(self, c, num_tags, lstm_hidden, packed=True):
        super().__init__()
        self.packed = packed
        self.bert = Bert(c)
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])
        self.lstm = nn.LSTM(c["hidden_size"], lstm_hidden, bidirectional=True, batch_first=True)
        self.classifier = nn.Linear(2 * lstm_hidden, num_tags)
        self.crf = CRF(num_tags)

    def forward(self, ids, attention_mask, first_piece, tags):
        h = self.bert(ids, attention_mask)
        mask = first_piece >= 0
        words = h.gather(1, first_piece.clamp(min=0).unsqueeze(-1).expand(-1, -1, h.shape[-1])) * mask.unsqueeze(-1)
        x = self.dropout(words)
        if self.packed:
            packed = nn.utils.rnn.pack_padded_sequence(x, mask.sum(1), batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            # the padded batch as it is: faster, but the reverse direction of a short sequence starts in its padding
            out, _ = self.lstm(x)
        emissions = self.classifier(self.dropout(out))
        return -self.crf(emissions, torch.where(mask, tags, torch.zeros_like(tags)), mask)


def main():
    data = json.load(open(sys.argv[1]))
    o = json.loads(sys.argv[2])
    torch.set_num_threads(o["threads"])
    torch.manual_seed(0)
    model = BertBiLstmCrf(data["config"], data["numTags"], o["lstmHiddenSize"], packed=o.get("torchLstm", "packed") == "packed")
    model.train()
    encoder = [p for n, p in model.named_parameters() if n.startswith("bert.")]
    head = [p for n, p in model.named_parameters() if not n.startswith("bert.")]
    opt = torch.optim.AdamW([{"params": encoder, "lr": 2e-5}, {"params": head, "lr": 1e-3}], weight_decay=0.01)
    batches = [
        {k: torch.tensor(b[k], dtype=torch.int64) for k in ("inputIds", "attentionMask", "firstPieceIndex", "tags")}
        for b in data["batches"]
    ]
    times = []
    losses = []
    for step in range(o["warmup"] + o["steps"]):
        b = batches[step % len(batches)]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(b["inputIds"], b["attentionMask"], b["firstPieceIndex"], b["tags"])
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step >= o["warmup"]:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"side": "pytorch", "lstm": "packed" if model.packed else "padded", "torch": torch.__version__, "threads": torch.get_num_threads(), "times": times, "firstLoss": losses[0], "lastLoss": losses[-1]}))


if __name__ == "__main__":
    main()
