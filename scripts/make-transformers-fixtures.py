"""Reference outputs from Hugging Face transformers itself for finetorch's text-encoder parity test
(test/models/text-transformers.test.ts).

Usage: PYTHON scripts/make-transformers-fixtures.py OUTDIR
PYTHON is any interpreter with torch and transformers (the torch 2.x venv, e.g. .venv-torch2/bin/python).

For bert, roberta and distilbert, transformers builds a tiny *ForSequenceClassification with a fixed
seed and writes with save_pretrained:
  OUTDIR/<arch>/       config.json + model.safetensors (the model finetorch loads)
  OUTDIR/<arch>/io.safetensors
      input_ids, attention_mask, token_type_ids: a padded batch (three lengths, one row unpadded)
      logits_sdpa, logits_eager: eval-mode logits with each of transformers' attention implementations
      full_input_ids, full_token_type_ids, full_logits_sdpa: a batch with no padding (no mask at all)
  OUTDIR/<arch>-train/ the same architecture with every dropout at 0, and io.safetensors with the padded
      batch, labels, the train-mode cross-entropy loss and grad.<parameter name> for every parameter.
  OUTDIR/versions.json  torch and transformers versions.

Usage: PYTHON scripts/make-transformers-fixtures.py heads OUTDIR
For test/models/text-heads.test.ts: for bert, roberta and distilbert, a tiny *ForMaskedLM and
*ForTokenClassification (every dropout at 0, so train and eval mode agree), save_pretrained()ed:
  OUTDIR/<arch>-<task>/  config.json + model.safetensors, and io.safetensors with the padded batch,
      labels (-100 on padding; for maskedLM on most tokens, as a collator leaves them), the eval logits,
      transformers' loss given those labels, and grad.<parameter name> of every parameter after
      backward() from that loss (the word embeddings' gradient includes the tied decoder's).
  OUTDIR/versions.json

Usage: PYTHON scripts/make-transformers-fixtures.py load TASK DIR INPUTS OUT [TASK DIR INPUTS OUT ...]
Loads each folder DIR (written by finetorch's models.savePretrained) with transformers'
AutoModelFor<TASK> (MaskedLM, TokenClassification or SequenceClassification), runs it in eval mode on
INPUTS' input_ids / attention_mask (/ token_type_ids), writes OUT (safetensors: logits) and prints
one JSON line per folder: the class it built and the loading info (missing, unexpected and
mismatched keys). One interpreter for all folders: importing transformers takes seconds.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file

VOCAB, HIDDEN, LAYERS, HEADS, FFN, POSITIONS, LABELS = 100, 32, 2, 4, 37, 64, 3
# Weights drawn wider than transformers' 0.02 so attention is far from uniform and the padding mask matters.
INIT_STD = 0.2
LENGTHS = [12, 9, 5]  # the padded batch: one full row, two padded rows


def config_for(arch, dropout=None):
    common = dict(vocab_size=VOCAB, max_position_embeddings=POSITIONS, num_labels=LABELS, initializer_range=INIT_STD)
    if arch == 'distilbert':
        c = transformers.DistilBertConfig(dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=FFN, pad_token_id=0, **common)
        if dropout is not None:
            c.dropout = c.attention_dropout = c.seq_classif_dropout = dropout
        return c, transformers.DistilBertForSequenceClassification
    cls = transformers.BertConfig if arch == 'bert' else transformers.RobertaConfig
    model_cls = transformers.BertForSequenceClassification if arch == 'bert' else transformers.RobertaForSequenceClassification
    c = cls(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=FFN, type_vocab_size=2,
            pad_token_id=0 if arch == 'bert' else 1, **common)
    if dropout is not None:
        c.hidden_dropout_prob = c.attention_probs_dropout_prob = dropout
        c.classifier_dropout = dropout
    return c, model_cls


def build(arch, seed, dropout=None, attn='sdpa'):
    config, model_cls = config_for(arch, dropout)
    config._attn_implementation = attn
    torch.manual_seed(seed)
    return model_cls(config)


def padded_batch(arch, pad):
    g = torch.Generator().manual_seed(1)
    T = max(LENGTHS)
    ids = torch.randint(3, VOCAB, (len(LENGTHS), T), generator=g)
    mask = torch.zeros(len(LENGTHS), T, dtype=torch.long)
    for i, n in enumerate(LENGTHS):
        mask[i, :n] = 1
    ids = torch.where(mask.bool(), ids, torch.full_like(ids, pad))
    types = torch.zeros_like(ids)
    if arch == 'bert':
        types[:, 4:] = 1
        types = types * mask
    return ids, mask, types


def forward(model, arch, ids, mask, types):
    if arch == 'distilbert':
        return model(input_ids=ids, attention_mask=mask).logits
    return model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits


def main(out):
    transformers.utils.logging.disable_progress_bar()
    os.makedirs(out, exist_ok=True)
    for seed, arch in enumerate(['bert', 'roberta', 'distilbert']):
        pad = 1 if arch == 'roberta' else 0
        ids, mask, types = padded_batch(arch, pad)
        full_ids = torch.randint(3, VOCAB, (2, 10), generator=torch.Generator().manual_seed(2))
        full_types = torch.zeros_like(full_ids)

        # eval: the saved model, logits from both attention implementations
        model = build(arch, seed)
        model.eval()
        model.save_pretrained(os.path.join(out, arch), safe_serialization=True)
        eager = build(arch, seed, attn='eager')
        eager.load_state_dict(model.state_dict())
        eager.eval()
        with torch.no_grad():
            io = {
                'input_ids': ids, 'attention_mask': mask, 'token_type_ids': types,
                'logits_sdpa': forward(model, arch, ids, mask, types),
                'logits_eager': forward(eager, arch, ids, mask, types),
                'full_input_ids': full_ids, 'full_token_type_ids': full_types,
                'full_logits_sdpa': forward(model, arch, full_ids, torch.ones_like(full_ids), full_types),
            }
        save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(out, arch, 'io.safetensors'))

        # train mode with every dropout at 0: loss and the gradient of every parameter
        model = build(arch, 100 + seed, dropout=0.0)
        model.train()
        model.save_pretrained(os.path.join(out, f'{arch}-train'), safe_serialization=True)
        labels = torch.tensor([0, 2, 1])
        loss = F.cross_entropy(forward(model, arch, ids, mask, types), labels)
        loss.backward()
        io = {'input_ids': ids, 'attention_mask': mask, 'token_type_ids': types, 'labels': labels, 'loss': loss.detach().reshape(1)}
        for name, p in model.named_parameters():
            if p.grad is not None:
                io[f'grad.{name}'] = p.grad.contiguous()
        save_file(io, os.path.join(out, f'{arch}-train', 'io.safetensors'))

    with open(os.path.join(out, 'versions.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'transformers': transformers.__version__}, f)


HEAD_CLASSES = {
    ('bert', 'maskedLM'): 'BertForMaskedLM', ('roberta', 'maskedLM'): 'RobertaForMaskedLM',
    ('distilbert', 'maskedLM'): 'DistilBertForMaskedLM',
    ('bert', 'tokenClassification'): 'BertForTokenClassification',
    ('roberta', 'tokenClassification'): 'RobertaForTokenClassification',
    ('distilbert', 'tokenClassification'): 'DistilBertForTokenClassification',
}


def heads(out):
    transformers.utils.logging.disable_progress_bar()
    os.makedirs(out, exist_ok=True)
    for seed, ((arch, task), cls_name) in enumerate(HEAD_CLASSES.items()):
        config, _ = config_for(arch, dropout=0.0)
        config._attn_implementation = 'sdpa'
        torch.manual_seed(200 + seed)
        model = getattr(transformers, cls_name)(config)
        model.train()
        folder = os.path.join(out, f'{arch}-{task}')
        model.save_pretrained(folder, safe_serialization=True)
        pad = 1 if arch == 'roberta' else 0
        ids, mask, types = padded_batch(arch, pad)
        g = torch.Generator().manual_seed(3 + seed)
        if task == 'maskedLM':
            # about a third of the real tokens are predicted (the collator's -100 elsewhere)
            chosen = (torch.rand(ids.shape, generator=g) < 0.35) & mask.bool()
            labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        else:
            labels = torch.where(mask.bool(), torch.randint(0, LABELS, ids.shape, generator=g), torch.full_like(ids, -100))
        kwargs = dict(input_ids=ids, attention_mask=mask, labels=labels)
        if arch != 'distilbert':
            kwargs['token_type_ids'] = types
        result = model(**kwargs)
        result.loss.backward()
        io = {'input_ids': ids, 'attention_mask': mask, 'token_type_ids': types, 'labels': labels,
              'logits': result.logits.detach(), 'loss': result.loss.detach().reshape(1)}
        for name, p in model.named_parameters():
            if p.grad is not None:
                io[f'grad.{name}'] = p.grad.contiguous()
        save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(folder, 'io.safetensors'))
    with open(os.path.join(out, 'versions.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'transformers': transformers.__version__}, f)


def load(task, folder, inputs, out):
    from safetensors.torch import load_file
    transformers.utils.logging.set_verbosity_error()
    auto = getattr(transformers, f'AutoModelFor{task}')
    model, info = auto.from_pretrained(folder, output_loading_info=True)
    model.eval()
    batch = load_file(inputs)
    kwargs = dict(input_ids=batch['input_ids'], attention_mask=batch['attention_mask'])
    if model.config.model_type != 'distilbert':
        kwargs['token_type_ids'] = batch['token_type_ids']
    with torch.no_grad():
        logits = model(**kwargs).logits
    save_file({'logits': logits.contiguous()}, out)
    print(json.dumps({'class': type(model).__name__, 'missing': sorted(info['missing_keys']),
                      'unexpected': sorted(info['unexpected_keys']),
                      'mismatched': sorted(str(k) for k in info['mismatched_keys'])}), flush=True)


if __name__ == '__main__':
    if sys.argv[1] == 'heads':
        heads(sys.argv[2])
    elif sys.argv[1] == 'load':
        rest = sys.argv[2:]
        for i in range(0, len(rest), 4):
            load(*rest[i:i + 4])
    else:
        main(sys.argv[1])
