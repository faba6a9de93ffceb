#!/usr/bin/env python3
"""Probe: does a data-aware method help ptq's int4 weight-only MiniLM-L6? GPTQ (each MatMul on its own,
Hessian X^T X of its fp32 input over the 60 `calib` sentences, damping 1 %, blocks of BS along K with
the same asymmetric min/max + clip search as ptq's RTN) against that RTN, both as fake-quantized fp32
weights (the word-embedding table RTN in both), mean cosine to fp32 on the `eval` split in ORT.

    .venv/bin/python bench/minilm_gptq_probe.py [BS]      (docs/results.md#weight-only-mode)
"""
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper as nh, helper
ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "tests/python"))
from minilm_util import embed, load_sentences, row_cosine, session
M = str(SHARED / "models/minilm-l6/model.onnx")
BITS=4; BS=int(sys.argv[1]) if len(sys.argv)>1 else 16
ev = load_sentences(SHARED / "data/sentences/eval")
cal = load_sentences(SHARED / "data/sentences/calib")
m=onnx.load(M); inits={i.name:i for i in m.graph.initializer}
mms=[n for n in m.graph.node if n.op_type=="MatMul" and n.input[1] in inits and len(nh.to_array(inits[n.input[1]]).shape)==2]
# capture inputs
m2=onnx.load(M)
for n in mms: m2.graph.output.append(helper.make_tensor_value_info(n.input[0], onnx.TensorProto.FLOAT, None))
s=ort.InferenceSession(m2.SerializeToString(),providers=["CPUExecutionProvider"])
H={n.name:0 for n in mms}
names=[n.input[0] for n in mms]
for f in cal:
    outs=s.run(names,f)
    for n,x in zip(mms,outs):
        x=x.reshape(-1,x.shape[-1]).astype(np.float64); H[n.name]=H[n.name]+x.T@x
qmax=2**BITS-1
def params(w, clip=True):  # w [N, bs] -> scale, zp per row, with clip search
    best=None
    for sh in ([1,0.95,0.9,0.85,0.8,0.75] if clip else [1]):
        lo=np.minimum(w.min(1),0)*sh; hi=np.maximum(w.max(1),0)*sh
        sc=(hi-lo)/qmax; sc[sc==0]=1
        zp=np.clip(np.round(-lo/sc),0,qmax)
        q=np.clip(np.round(w/sc[:,None])+zp[:,None],0,qmax); e=((q-zp[:,None])*sc[:,None]-w)**2
        e=e.sum(1)
        if best is None: best=[sc,zp,e]
        else:
            better=e<best[2]; best[0]=np.where(better,sc,best[0]); best[1]=np.where(better,zp,best[1]); best[2]=np.minimum(e,best[2])
    return best[0],best[1]
def fq(w,sc,zp): return (np.clip(np.round(w/sc)+zp,0,qmax)-zp)*sc
def rtn(W):  # W [K,N]
    Wt=W.T.copy(); K=Wt.shape[1]
    for b in range(0,K,BS):
        sc,zp=params(Wt[:,b:b+BS]); Wt[:,b:b+BS]=fq(Wt[:,b:b+BS],sc[:,None],zp[:,None])
    return Wt.T
def gptq(W,Hm,damp=0.01):
    Wt=W.T.astype(np.float64).copy(); K=Wt.shape[1]; Hm=Hm.copy()
    dead=np.diag(Hm)==0; Hm[dead,dead]=1; Wt[:,dead]=0
    Hm+=damp*np.mean(np.diag(Hm))*np.eye(K)
    Hinv=np.linalg.cholesky(np.linalg.inv(Hm)).T  # upper
    Q=np.zeros_like(Wt)
    for i in range(K):
        if i%BS==0: sc,zp=params(Wt[:,i:i+BS])
        q=fq(Wt[:,i],sc,zp); Q[:,i]=q
        err=(Wt[:,i]-q)/Hinv[i,i]
        Wt[:,i+1:]-=np.outer(err,Hinv[i,i+1:])
    return Q.T.astype(np.float32)
ref=embed(session(M),ev)
for method in ("rtn","gptq"):
    m3=onnx.load(M); it={i.name:i for i in m3.graph.initializer}
    for n in mms:
        W=nh.to_array(it[n.input[1]]).astype(np.float64)
        Wq=rtn(W) if method=="rtn" else gptq(W,H[n.name])
        it[n.input[1]].CopyFrom(nh.from_array(Wq.astype(np.float32),n.input[1]))
    # embedding table rtn both
    for n in m3.graph.node:
        if n.op_type=="Gather" and n.input[0] in it and "word_emb" in n.input[0]:
            T=nh.to_array(it[n.input[0]]).astype(np.float64); Tq=rtn(T.T)  # rows of T quantized along D: rtn expects [K,N] quantized along K per column
            it[n.input[0]].CopyFrom(nh.from_array(Tq.T.astype(np.float32) if Tq.shape!=T.shape else Tq.astype(np.float32),n.input[0]))
    WORK = ROOT / "bench/.work/minilm"
    WORK.mkdir(parents=True, exist_ok=True)
    p = str(WORK / f"fq_{method}_{BS}.onnx"); onnx.save(m3,p)
    c=row_cosine(embed(session(p),ev),ref); print(method,BS,f"{c.mean():.5f} min {c.min():.4f}",flush=True)
