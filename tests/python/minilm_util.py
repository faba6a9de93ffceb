"""MiniLM test helpers shared by transformer_ort.py, dynamic_ort.py, weight_only_ort.py and contrib_ort.py: the
tokenized sentences of ../shared/data/sentences, ORT sessions, sentence embeddings, row cosines."""
import pathlib

import numpy as np
import onnxruntime as ort

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def load_sentences(d, n=None):
    """The first n .npz sentences of folder d (all when n is None), as ORT feeds."""
    files = sorted(pathlib.Path(d).glob("*.npz"))[:n]
    return [{k: np.load(f)[k] for k in INPUTS} for f in files]


def session(path, optimized=None):
    """A 2-thread CPU session; with `optimized`, ORT's extended optimization saved to that path."""
    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    o.log_severity_level = 3
    if optimized:
        o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        o.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def embed(sess, feeds):
    """sentence_embedding rows for every feed, concatenated."""
    return np.concatenate([sess.run(["sentence_embedding"], f)[0] for f in feeds])


def row_cosine(a, b):
    """Cosine of each row of a with the same row of b."""
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
