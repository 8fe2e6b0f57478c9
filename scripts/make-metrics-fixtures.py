#!/usr/bin/python3
"""scikit-learn reference values (Debian's python3-sklearn 1.2.1) for finetorch's metrics.

Run with /usr/bin/python3 scripts/make-metrics-fixtures.py; writes test/fixtures/metrics.json:
random cases with ties, classes missing from one side, and imbalance.
"""
import json
import os
import warnings

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

warnings.filterwarnings('ignore')  # zero_division warnings are part of what is tested
rng = np.random.default_rng(0)
OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'metrics.json')


def lst(a):
    return [float(x) if isinstance(x, (float, np.floating)) else x for x in np.asarray(a).tolist()]


cls_cases = []
for i in range(150):
    n = int(rng.integers(5, 60))
    k = int(rng.integers(2, 6))
    skew = rng.dirichlet(np.ones(k) * (0.3 if i % 3 == 0 else 2.0))  # some strongly imbalanced
    y_true = rng.choice(k, size=n, p=skew)
    noise = rng.random(n) < rng.uniform(0.1, 0.8)
    y_pred = np.where(noise, rng.integers(0, k + (1 if i % 5 == 0 else 0), size=n), y_true)  # sometimes an extra class
    case = {'yTrue': y_true.tolist(), 'yPred': y_pred.tolist(), 'accuracy': accuracy_score(y_true, y_pred),
            'confusion': confusion_matrix(y_true, y_pred).tolist(), 'prf': []}
    labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    averages = ['micro', 'macro', 'weighted', None] + (['binary'] if labels == [0, 1] or labels == [1] or labels == [0] else [])
    for average in averages:
        for zd in (0, 1):
            p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=zd)
            case['prf'].append({'average': average, 'zeroDivision': zd, 'precision': lst(p) if average is None else float(p),
                                'recall': lst(r) if average is None else float(r), 'f': lst(f) if average is None else float(f),
                                'support': lst(s) if average is None else None})
    cls_cases.append(case)

auc_cases = []
for i in range(120):
    n = int(rng.integers(6, 80))
    if i % 2 == 0:  # binary, scores rounded so that ties occur
        y = rng.choice(2, size=n, p=[0.9, 0.1] if i % 4 == 0 else [0.5, 0.5])
        y[0], y[1] = 0, 1
        labels = np.array([0, 1]) if i % 8 else np.array([3, 7])
        y = labels[y]
        score = np.round(rng.random(n) + (y == labels[1]) * rng.uniform(0, 0.5), 1)
        auc_cases.append({'yTrue': y.tolist(), 'yScore': score.tolist(), 'auc': roc_auc_score(y, score)})
    else:  # multiclass one-vs-rest on probabilities
        k = int(rng.integers(3, 6))
        y = rng.choice(k, size=n)
        y[:k] = np.arange(k)
        logits = np.round(rng.normal(size=(n, k)) + np.eye(k)[y] * rng.uniform(0, 2), 1)
        prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        for average in ('macro', 'weighted'):
            auc_cases.append({'yTrue': y.tolist(), 'yScore': prob.tolist(), 'average': average,
                              'auc': roc_auc_score(y, prob, multi_class='ovr', average=average)})

with open(OUT, 'w') as f:
    json.dump({'classification': cls_cases, 'auc': auc_cases}, f, separators=(',', ':'))
print('wrote', OUT)
