#!/usr/bin/env python3
"""Python reference for the Rust vision pipeline: the same models, run by the Python ONNX
Runtime, with OpenCV's own YuNet decoder (cv2.FaceDetectorYN). Run it with the tool venv made
by models/fetch.py ($CLOCKFACE_CACHE/venv/bin/python). Prints JSON on stdout.

  reference.py detect --size 320 --threshold 0.8 IMAGE...   faces per image (OpenCV decoder)
  reference.py embed CROP.png...                             MobileFaceNet embeddings of crops
  reference.py bench --threads 2 --frames 20 --size 320 IMAGE...
      the whole pipeline in Python (detect, align, liveness, embed) and its median per frame
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

CACHE = Path(os.environ.get("CLOCKFACE_CACHE", Path.home() / ".cache" / "clockface"))
MODELS = CACHE / "models"
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)


def letterbox_scale(w, h, size):
    s = min(size / w, size / h)
    return s, max(1, min(size, round(w * s))), max(1, min(size, round(h * s)))


def detect_opencv(path, size, threshold):
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    s, cw, ch = letterbox_scale(w, h, size)
    small = cv2.resize(img, (cw, ch), interpolation=cv2.INTER_LINEAR)
    det = cv2.FaceDetectorYN.create(str(MODELS / "face_detection_yunet_2023mar.onnx"), "", (cw, ch),
                                    threshold, 0.3, 5000)
    _, faces = det.detect(small)
    out = []
    for f in (faces if faces is not None else []):
        out.append({"box": [float(v) / s for v in f[0:4]],
                    "landmarks": [[float(f[4 + 2 * i]) / s, float(f[5 + 2 * i]) / s] for i in range(5)],
                    "score": float(f[14])})
    return {"image": str(path), "faces": out}


def session(name, threads):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(MODELS / name), o, providers=["CPUExecutionProvider"])


def mobilefacenet_input(crops_rgb):
    return ((np.stack(crops_rgb).astype(np.float32) - 127.5) / 128.0)


def cmd_embed(args):
    sess = session("mobilefacenet.onnx", 1)
    crops = [cv2.cvtColor(cv2.imread(p, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in args.crops]
    emb = sess.run(None, {"input": mobilefacenet_input(crops)})[0]
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    print(json.dumps([{"crop": p, "embedding": e.tolist()} for p, e in zip(args.crops, emb)]))


class Pipeline:
    """The kiosk pipeline in Python: ORT for all three models, numpy/OpenCV around them."""

    def __init__(self, threads, size, threshold=0.8):
        self.det = session("face_detection_yunet_2023mar_dynamic.onnx", threads)
        self.emb = session("mobilefacenet.onnx", threads)
        self.live = session("face_antispoofing.onnx", threads)
        self.size, self.threshold = size, threshold

    def detect(self, img_bgr):
        h, w = img_bgr.shape[:2]
        s, cw, ch = letterbox_scale(w, h, self.size)
        iw, ih = -(-cw // 32) * 32, -(-ch // 32) * 32
        canvas = np.zeros((ih, iw, 3), np.float32)
        canvas[:ch, :cw] = cv2.resize(img_bgr, (cw, ch), interpolation=cv2.INTER_LINEAR)
        outs = dict(zip([o.name for o in self.det.get_outputs()],
                        self.det.run(None, {"input": canvas.transpose(2, 0, 1)[None]})))
        boxes, scores, kps = [], [], []
        for stride in (8, 16, 32):
            cols, rows = iw // stride, ih // stride
            score = np.sqrt(np.clip(outs["cls_%d" % stride][0, :, 0], 0, 1) * np.clip(outs["obj_%d" % stride][0, :, 0], 0, 1))
            keep = np.where(score >= self.threshold)[0]
            if not len(keep):
                continue
            c, r = (keep % cols).astype(np.float32), (keep // cols).astype(np.float32)
            b = outs["bbox_%d" % stride][0, keep]
            cx, cy = (c + b[:, 0]) * stride, (r + b[:, 1]) * stride
            bw, bh = np.exp(b[:, 2]) * stride, np.exp(b[:, 3]) * stride
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, bw, bh], 1) / s)
            k = outs["kps_%d" % stride][0, keep].reshape(-1, 5, 2)
            kps.append(np.stack([(k[:, :, 0] + c[:, None]) * stride, (k[:, :, 1] + r[:, None]) * stride], 2) / s)
            scores.append(score[keep])
        if not boxes:
            return []
        boxes, scores, kps = np.concatenate(boxes), np.concatenate(scores), np.concatenate(kps)
        idx = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.threshold, 0.3)
        return [(boxes[i], scores[i], kps[i]) for i in np.array(idx).reshape(-1)]

    def frame(self, img_bgr):
        faces = self.detect(img_bgr)
        if not faces:
            return None
        box, _, lm = max(faces, key=lambda f: f[0][2] * f[0][3])
        # Liveness: square crop around the box, 256x256, RGB / 255.
        x, y, w, h = box
        side = max(w, h)
        x0, y0 = x + w / 2 - side / 2, y + h / 2 - side / 2
        sc = 256.0 / side
        m = np.array([[sc, 0, -x0 * sc + 0.5 * sc - 0.5], [0, sc, -y0 * sc + 0.5 * sc - 0.5]], np.float32)
        crop = cv2.warpAffine(img_bgr, m, (256, 256), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
        sharp = int((np.abs(cv2.Laplacian(grey, cv2.CV_32F)) > 50).sum())
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255.0
        sc_out, mask = self.live.run(None, {"input": rgb})
        spoof = float((np.abs(sc_out) * mask).sum())
        # Alignment and embedding.
        mat, _ = cv2.estimateAffinePartial2D(lm.astype(np.float32), TEMPLATE, method=cv2.LMEDS)
        aligned = cv2.cvtColor(cv2.warpAffine(img_bgr, mat, (112, 112)), cv2.COLOR_BGR2RGB)
        emb = self.emb.run(None, {"input": mobilefacenet_input([aligned])})[0][0]
        return spoof, sharp, emb / np.linalg.norm(emb)


def cmd_bench(args):
    p = Pipeline(args.threads, args.size)
    imgs = [cv2.imread(i, cv2.IMREAD_COLOR) for i in args.images]
    for img in imgs:  # warm-up
        p.frame(img)
    times = []
    for _ in range(args.frames):
        for img in imgs:
            t = time.perf_counter()
            p.frame(img)
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    print(json.dumps({"threads": args.threads, "frames": len(times), "median_ms": statistics.median(times),
                      "p95_ms": times[int(0.95 * (len(times) - 1))]}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("detect")
    d.add_argument("--size", type=int, default=320)
    d.add_argument("--threshold", type=float, default=0.8)
    d.add_argument("images", nargs="+")
    e = sub.add_parser("embed")
    e.add_argument("crops", nargs="+")
    b = sub.add_parser("bench")
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--frames", type=int, default=20)
    b.add_argument("--size", type=int, default=320)
    b.add_argument("images", nargs="+")
    args = ap.parse_args()
    if args.cmd == "detect":
        print(json.dumps([detect_opencv(p, args.size, args.threshold) for p in args.images]))
    elif args.cmd == "embed":
        cmd_embed(args)
    else:
        cmd_bench(args)


if __name__ == "__main__":
    sys.exit(main())
