#!/usr/bin/env python3
"""examples/k8s without a cluster: the manifests parse and agree, and their container commands,
run as the kubelet would (/bin/sh -c, the pod's env, one process per completion index, side by
side), give the table and model of a single-machine run, byte for byte.

    k8s_manifests.py --quantize BIN --examples DIR --demo DIR

Data: the demo CNN and its 100 calibration samples (models/demo), so no ../shared is needed.
Exit 77 (skip) when PyYAML is missing (Debian python3-yaml; tools/setup.sh --tests installs it).
"""
import argparse
import concurrent.futures
import filecmp
import os
import shlex
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("SKIP: PyYAML not available to this python (Debian package python3-yaml)")
    sys.exit(77)

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)
    return cond


def load_one(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    if len(docs) != 1:
        sys.exit(f"FAIL: {path}: expected one YAML document, found {len(docs)}")
    return docs[0]


def env_of(container):
    return {e["name"]: str(e["value"]) for e in container.get("env", [])}


def pod_spec(job):
    return job["spec"]["template"]["spec"]


def check_job(job, name, pvc_name):
    check(job.get("apiVersion") == "batch/v1" and job.get("kind") == "Job", f"{name}: a batch/v1 Job")
    spec = pod_spec(job)
    check(spec.get("restartPolicy") in ("Never", "OnFailure"), f"{name}: restartPolicy Never or OnFailure")
    containers = spec.get("containers", [])
    check(len(containers) == 1, f"{name}: one container")
    c = containers[0]
    check(c.get("command", [])[:2] == ["/bin/sh", "-c"] and len(c.get("args", [])) == 1,
          f"{name}: command /bin/sh -c with one script")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        check(m["name"] in volumes, f"{name}: volumeMount {m['name']} has a volume")
    claims = [v["persistentVolumeClaim"]["claimName"] for v in volumes.values() if "persistentVolumeClaim" in v]
    check(claims == [pvc_name], f"{name}: mounts the PVC {pvc_name} (got {claims})")
    mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
    check(len(mounts) == 1, f"{name}: one mount (got {mounts})")
    return c, mounts[0] if mounts else "/data"


def run_pod(script, env, extra):
    full = {"PATH": env["PATH"], "HOME": env["HOME"], **extra}
    return subprocess.run(["/bin/sh", "-c", script], env=full, capture_output=True, text=True, timeout=300)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("--demo", required=True)
    ap.add_argument("--flags", default="--method mse --target trt",
                    help="CALIB_FLAGS for the run (the demo is .npy data: no image preprocessing)")
    a = ap.parse_args()

    pvc = load_one(os.path.join(a.examples, "pvc.yaml"))
    cal = load_one(os.path.join(a.examples, "calibrate-job.yaml"))
    mrg = load_one(os.path.join(a.examples, "merge-job.yaml"))

    check(pvc.get("kind") == "PersistentVolumeClaim", "pvc.yaml: a PersistentVolumeClaim")
    check("ReadWriteMany" in pvc["spec"].get("accessModes", []), "pvc.yaml: ReadWriteMany (pods on several nodes)")
    pvc_name = pvc["metadata"]["name"]

    c_cal, mount = check_job(cal, "calibrate-job.yaml", pvc_name)
    c_mrg, mount_m = check_job(mrg, "merge-job.yaml", pvc_name)
    s = cal["spec"]
    n = s.get("completions")
    check(s.get("completionMode") == "Indexed", "calibrate-job.yaml: completionMode Indexed")
    check(isinstance(n, int) and n >= 1, "calibrate-job.yaml: completions is a positive integer")
    check(1 <= s.get("parallelism", 1) <= n, "calibrate-job.yaml: 1 <= parallelism <= completions")
    e_cal, e_mrg = env_of(c_cal), env_of(c_mrg)
    check(e_cal.get("SHARDS") == str(n), f"calibrate-job.yaml: SHARDS {e_cal.get('SHARDS')} == completions {n}")
    check(e_mrg.get("SHARDS") == str(n), f"merge-job.yaml: SHARDS {e_mrg.get('SHARDS')} == completions {n}")
    for k in ("MODEL", "DATA", "WORK", "CALIB_FLAGS"):
        check(e_cal.get(k) == e_mrg.get(k), f"{k} is the same in both jobs")
    check(mount == mount_m, "both jobs mount the PVC at the same path")
    check(c_cal.get("image") == c_mrg.get("image"), "both jobs use the same image")
    for k in ("MODEL", "DATA", "WORK"):
        check(e_cal.get(k, "").startswith(mount + "/"), f"calibrate-job.yaml: {k} lies on the PVC ({mount})")
    check(e_mrg.get("OUT", "").startswith(mount + "/"), f"merge-job.yaml: OUT lies on the PVC ({mount})")
    if FAILURES:
        return 1

    # Run the two scripts here: the PVC is a temp folder, `quantize` is the build's binary on PATH.
    qdir = os.path.dirname(os.path.abspath(a.quantize))
    base = {"PATH": qdir + os.pathsep + "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    if os.path.basename(a.quantize) != "quantize":
        sys.exit("FAIL: --quantize must be a binary named quantize (the scripts call it by name)")
    with tempfile.TemporaryDirectory(prefix="ptq-k8s.") as pv:
        def local(p):  # a path in the pod -> the same path on the temp "PVC"
            return pv + p[len(mount):] if p.startswith(mount + "/") else p

        os.symlink(os.path.abspath(os.path.join(a.demo, "model.onnx")), local(e_cal["MODEL"]))
        os.symlink(os.path.abspath(os.path.join(a.demo, "calib")), local(e_cal["DATA"]))
        flags = a.flags
        env_c = {k: local(v) for k, v in e_cal.items()} | {"CALIB_FLAGS": flags}
        env_m = {k: local(v) for k, v in e_mrg.items()} | {"CALIB_FLAGS": flags, "EMIT_FLAGS": "-q"}

        with concurrent.futures.ThreadPoolExecutor(max_workers=s.get("parallelism", 1)) as ex:
            pods = list(ex.map(lambda i: run_pod(c_cal["args"][0], base, env_c | {"JOB_COMPLETION_INDEX": str(i)}),
                               range(n)))
        for i, p in enumerate(pods):
            if not check(p.returncode == 0, f"calibrate pod index {i} exited {p.returncode}"):
                print(p.stdout + p.stderr)
            check(f"ptq shard {i + 1}/{n}:" in p.stdout, f"calibrate pod index {i} is shard {i + 1}/{n}")
        if FAILURES:
            return 1
        p = run_pod(c_mrg["args"][0], base, env_m)
        if not check(p.returncode == 0, f"merge pod exited {p.returncode}"):
            print(p.stdout + p.stderr)
            return 1

        ref_t, ref_m = os.path.join(pv, "ref-table.json"), os.path.join(pv, "ref.onnx")
        cmd = [a.quantize, local(e_cal["MODEL"]), "--calib", local(e_cal["DATA"]), *shlex.split(flags),
               "--save-calib", ref_t, "-o", ref_m, "-q"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if not check(r.returncode == 0, f"single-machine run exited {r.returncode}: {r.stderr}"):
            return 1
        table = os.path.join(env_m["WORK"], "table.json")
        check(filecmp.cmp(ref_t, table, shallow=False), "merged table == single-machine table (byte for byte)")
        check(filecmp.cmp(ref_m, env_m["OUT"], shallow=False), "model == single-machine model (byte for byte)")

        # A missing shard file: the merge pod must fail and write nothing.
        os.remove(os.path.join(env_c["WORK"], "parts", f"part-{n:04d}-of-{n:04d}.json"))
        os.remove(env_m["OUT"])
        p = run_pod(c_mrg["args"][0], base, env_m)
        check(p.returncode != 0 and "missing shard statistics" in p.stderr and not os.path.exists(env_m["OUT"]),
              f"merge pod with a shard missing fails (exit {p.returncode}) and writes no model")
    if FAILURES:
        return 1
    print(f"PASS: manifests consistent; {n} indexed pods + merge pod == one machine ({a.flags}, demo model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
