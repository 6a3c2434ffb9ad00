"""Reference numbers from scikit-learn for the TypeScript tests.

Usage: python3 sklearn_ref.py TASK INPUT.json  -> JSON on stdout.
Non-finite floats are written as the strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers).
"""
import json
import math
import sys
import warnings

import numpy as np


def clean(v):
    if isinstance(v, np.ndarray):
        return clean(v.tolist())
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
    if isinstance(v, (np.floating, float)):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "Infinity" if f > 0 else "-Infinity"
        return f
    if isinstance(v, np.integer):
        return int(v)
    return v


def f_classif(d):
    from sklearn.feature_selection import SelectKBest, f_classif

    X = np.asarray(d["X"], dtype=np.float64)
    y = np.asarray(d["y"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        F, p = f_classif(X, y)
        selected = {
            str(k): SelectKBest(f_classif, k=k).fit(X, y).get_support(indices=True)
            for k in d.get("ks", [])
        }
    return {"F": F, "p": p, "selected": selected}


def metrics(d):
    from sklearn.metrics import (accuracy_score, confusion_matrix, precision_recall_fscore_support,
                                 roc_auc_score)

    y = np.asarray(d["y"])
    scores = np.asarray(d["scores"], dtype=np.float64)
    n = scores.shape[1]
    labels = list(range(n))
    pred = scores.argmax(axis=1)
    prec, rec, f1, sup = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    out = {
        "accuracy": accuracy_score(y, pred),
        "precision": prec, "recall": rec, "f1": f1, "support": sup,
        "macroF1": precision_recall_fscore_support(y, pred, labels=labels, average="macro", zero_division=0)[2],
        "confusion": confusion_matrix(y, pred, labels=labels),
        "aucPerClass": [roc_auc_score((y == c).astype(int), scores[:, c]) for c in labels],
    }
    if n == 2:
        out["aucMacro"] = roc_auc_score(y, scores[:, 1])
    else:
        out["aucMacro"] = roc_auc_score(y, scores, multi_class="ovr", average="macro", labels=labels)
    return out


def svc(d):
    from sklearn.svm import SVC

    X = np.asarray(d["X"], dtype=np.float64)
    y = np.asarray(d["y"])
    m = SVC(kernel=d.get("kernel", "poly"), degree=d.get("degree", 3), gamma=d.get("gamma", "auto"),
            coef0=d.get("coef0", 0.0), C=d.get("C", 1.0))
    m.fit(X, y)
    return {"predict": m.predict(np.asarray(d["Xtest"], dtype=np.float64)), "nSV": m.n_support_}


def logistic(d):
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(d["X"], dtype=np.float64)
    y = np.asarray(d["y"])
    m = LogisticRegression(C=d.get("C", 1.0), max_iter=10000, tol=1e-10)
    m.fit(X, y)
    Xt = np.asarray(d["Xtest"], dtype=np.float64)
    return {"coef": m.coef_, "intercept": m.intercept_, "predict": m.predict(Xt), "proba": m.predict_proba(Xt)}


def digits(d):
    """scikit-learn's bundled handwritten digits (real 8x8 images, no download), first `classes` classes."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    keep = y < d.get("classes", 4)
    return {"X": X[keep], "y": y[keep]}


TASKS = {"digits": digits, "f_classif": f_classif, "metrics": metrics, "svc": svc, "logistic": logistic}

if __name__ == "__main__":
    task, path = sys.argv[1], sys.argv[2]
    with open(path) as fh:
        data = json.load(fh)
    json.dump(clean(TASKS[task](data)), sys.stdout)
