#!/usr/bin/python3
"""Reference text encoders for finetorch's parity tests, assembled from PyTorch's own
modules (Debian's python3-torch; Hugging Face transformers is not installed in CI).

Usage: /usr/bin/python3 scripts/make-text-fixtures.py OUTDIR
For bert, roberta and distilbert writes OUTDIR/<name>/config.json (Hugging Face keys),
model.safetensors and pytorch_model.bin (Hugging Face parameter names) and io.safetensors
(input ids, attention mask, token type ids and the eval-mode logits). The modules below
follow the Hugging Face implementations (BertForSequenceClassification,
RobertaForSequenceClassification, DistilBertForSequenceClassification) with small widths.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def write_safetensors(path, tensors):
    dt = {torch.float32: 'F32', torch.int64: 'I64'}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().numpy().tobytes()
        header[name] = {'dtype': dt[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


class Group(nn.Module):
    def __init__(this, **children):  # 'this': Hugging Face names one child 'self'
        super().__init__()
        for k, v in children.items():
            this.add_module(k, v)


def heads_attention(q, k, v, mask_add, heads, scale_queries=False):
    B, T, H = q.shape
    d = H // heads
    split = lambda x: x.view(B, -1, heads, d).transpose(1, 2)
    if scale_queries:
        scores = (split(q) / math.sqrt(d)) @ split(k).transpose(-1, -2)
    else:
        scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(d)
    probs = (scores + mask_add).softmax(-1)
    return (probs @ split(v)).transpose(1, 2).reshape(B, T, H)


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i, eps = c['hidden_size'], c['intermediate_size'], c['layer_norm_eps']
        self.heads = c['num_attention_heads']
        self.attention = Group(self=Group(query=nn.Linear(h, h), key=nn.Linear(h, h), value=nn.Linear(h, h)),
                               output=Group(dense=nn.Linear(h, h), LayerNorm=nn.LayerNorm(h, eps=eps)))
        self.intermediate = Group(dense=nn.Linear(h, i))
        self.output = Group(dense=nn.Linear(i, h), LayerNorm=nn.LayerNorm(h, eps=eps))

    def forward(self, x, mask_add):
        s = self.attention.self
        ctx = heads_attention(s.query(x), s.key(x), s.value(x), mask_add, self.heads)
        a = self.attention.output.LayerNorm(self.attention.output.dense(ctx) + x)
        return self.output.LayerNorm(self.output.dense(F.gelu(self.intermediate.dense(a))) + a)


class BertFamily(nn.Module):
    def __init__(self, c, roberta):
        super().__init__()
        h, eps, pad = c['hidden_size'], c['layer_norm_eps'], c['pad_token_id']
        self.is_roberta, self.pad = roberta, pad
        base = Group(embeddings=Group(word_embeddings=nn.Embedding(c['vocab_size'], h, padding_idx=pad),
                                      position_embeddings=nn.Embedding(c['max_position_embeddings'], h, padding_idx=pad if roberta else None),
                                      token_type_embeddings=nn.Embedding(c['type_vocab_size'], h),
                                      LayerNorm=nn.LayerNorm(h, eps=eps)),
                     encoder=Group(layer=nn.ModuleList([BertLayer(c) for _ in range(c['num_hidden_layers'])])))
        if not roberta:
            base.add_module('pooler', Group(dense=nn.Linear(h, h)))
        self.add_module('roberta' if roberta else 'bert', base)
        if roberta:
            self.classifier = Group(dense=nn.Linear(h, h), out_proj=nn.Linear(h, c['num_labels']))
        else:
            self.classifier = nn.Linear(h, c['num_labels'])

    def forward(self, ids, mask, types):
        base = getattr(self, 'roberta' if self.is_roberta else 'bert')
        if self.is_roberta:
            not_pad = ids.ne(self.pad).long()
            pos = torch.cumsum(not_pad, 1) * not_pad + self.pad
        else:
            pos = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
        e = base.embeddings
        x = e.LayerNorm(e.word_embeddings(ids) + e.token_type_embeddings(types) + e.position_embeddings(pos))
        mask_add = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in base.encoder.layer:
            x = layer(x, mask_add)
        if self.is_roberta:
            return self.classifier.out_proj(torch.tanh(self.classifier.dense(x[:, 0])))
        return self.classifier(torch.tanh(base.pooler.dense(x[:, 0])))


class DistilLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i = c['dim'], c['hidden_dim']
        self.heads = c['n_heads']
        self.attention = Group(q_lin=nn.Linear(h, h), k_lin=nn.Linear(h, h), v_lin=nn.Linear(h, h), out_lin=nn.Linear(h, h))
        self.sa_layer_norm = nn.LayerNorm(h, eps=1e-12)
        self.ffn = Group(lin1=nn.Linear(h, i), lin2=nn.Linear(i, h))
        self.output_layer_norm = nn.LayerNorm(h, eps=1e-12)

    def forward(self, x, mask_add):
        a = self.attention
        ctx = heads_attention(a.q_lin(x), a.k_lin(x), a.v_lin(x), mask_add, self.heads, scale_queries=True)
        s = self.sa_layer_norm(a.out_lin(ctx) + x)
        return self.output_layer_norm(self.ffn.lin2(F.gelu(self.ffn.lin1(s))) + s)


class DistilBert(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c['dim']
        self.distilbert = Group(embeddings=Group(word_embeddings=nn.Embedding(c['vocab_size'], h, padding_idx=c['pad_token_id']),
                                                 position_embeddings=nn.Embedding(c['max_position_embeddings'], h),
                                                 LayerNorm=nn.LayerNorm(h, eps=1e-12)),
                                transformer=Group(layer=nn.ModuleList([DistilLayer(c) for _ in range(c['n_layers'])])))
        self.pre_classifier = nn.Linear(h, h)
        self.classifier = nn.Linear(h, c['num_labels'] if 'num_labels' in c else 2)

    def forward(self, ids, mask, types=None):
        e = self.distilbert.embeddings
        pos = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
        x = e.LayerNorm(e.word_embeddings(ids) + e.position_embeddings(pos))
        mask_add = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.distilbert.transformer.layer:
            x = layer(x, mask_add)
        return self.classifier(torch.relu(self.pre_classifier(x[:, 0])))


CONFIGS = {
    'bert': {'model_type': 'bert', 'architectures': ['BertForSequenceClassification'], 'vocab_size': 100, 'hidden_size': 32,
             'num_hidden_layers': 2, 'num_attention_heads': 4, 'intermediate_size': 64, 'hidden_act': 'gelu',
             'hidden_dropout_prob': 0.1, 'attention_probs_dropout_prob': 0.1, 'max_position_embeddings': 64, 'type_vocab_size': 2,
             'layer_norm_eps': 1e-12, 'pad_token_id': 0, 'id2label': {'0': 'neg', '1': 'neu', '2': 'pos'},
             'label2id': {'neg': 0, 'neu': 1, 'pos': 2}},
    'roberta': {'model_type': 'roberta', 'architectures': ['RobertaForSequenceClassification'], 'vocab_size': 100, 'hidden_size': 32,
                'num_hidden_layers': 2, 'num_attention_heads': 4, 'intermediate_size': 64, 'hidden_act': 'gelu',
                'hidden_dropout_prob': 0.1, 'attention_probs_dropout_prob': 0.1, 'max_position_embeddings': 66, 'type_vocab_size': 1,
                'layer_norm_eps': 1e-5, 'pad_token_id': 1, 'bos_token_id': 0, 'eos_token_id': 2,
                'id2label': {'0': 'a', '1': 'b', '2': 'c'}},
    'distilbert': {'model_type': 'distilbert', 'architectures': ['DistilBertForSequenceClassification'], 'vocab_size': 100, 'dim': 32,
                   'n_layers': 2, 'n_heads': 4, 'hidden_dim': 64, 'activation': 'gelu', 'dropout': 0.1, 'attention_dropout': 0.1,
                   'max_position_embeddings': 64, 'seq_classif_dropout': 0.2, 'pad_token_id': 0, 'sinusoidal_pos_embds': False,
                   'id2label': {'0': 'x', '1': 'y', '2': 'z'}},
}


def main():
    out = sys.argv[1]
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    for name, c in CONFIGS.items():
        torch.manual_seed(0)
        cfg = dict(c, num_labels=len(c['id2label']))
        model = DistilBert(cfg) if name == 'distilbert' else BertFamily(cfg, name == 'roberta')
        with torch.no_grad():  # N(0, 0.1) weights (larger than Hugging Face's 0.02, for larger logits), LayerNorm near 1
            for pname, p in model.named_parameters():
                if 'LayerNorm' in pname or 'layer_norm' in pname:
                    p.normal_(1.0 if pname.endswith('weight') else 0.0, 0.1)
                else:
                    p.normal_(0, 0.1)
        model.eval()
        pad = c['pad_token_id']
        ids = torch.randint(3, 100, (2, 10))
        ids[1, 7:] = pad
        mask = (ids != pad).long()
        types = torch.zeros_like(ids)
        if name == 'bert':
            types[:, 5:] = 1
        with torch.no_grad():
            logits = model(ids, mask, types)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'config.json'), 'w') as f:
            json.dump(c, f, indent=2)
        sd = model.state_dict()
        write_safetensors(os.path.join(d, 'model.safetensors'), sd)
        torch.save(sd, os.path.join(d, 'pytorch_model.bin'))
        write_safetensors(os.path.join(d, 'io.safetensors'), {'input_ids': ids, 'attention_mask': mask, 'token_type_ids': types, 'logits': logits})
        print('wrote', name, flush=True)


main()
