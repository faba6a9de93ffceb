#!/usr/bin/env python3
"""The HTML report in a real browser (issue 15): Debian's headless Chromium renders it.

Quantizes the demo model with --eval and a budget, writes --report-html, then
- `chromium --headless --dump-dom`: the rendered DOM has the per-layer chart (an <svg class="chart">
  with one labelled row per quantized node), the worst layers' value histograms (bars and the two
  clip-range lines), the budget verdict and the summary;
- `--screenshot`: the chart area of the picture is not empty (bars drawn in the layer colours);
- the browser log has no script error or failed resource load (the report is self-contained).
Screenshot by hand: chromium --headless --no-sandbox --window-size=1400,1800 --screenshot=r.png file://$PWD/r.html
Exit 77 (skip) when chromium or Pillow is missing.
"""
import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

try:
    from PIL import Image
except ImportError as e:
    print(f"SKIP: Pillow not importable ({e}); run tools/setup.sh --tests")
    sys.exit(77)


def chromium(*args):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", *args], capture_output=True, text=True, timeout=120)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--demo", required=True, help="models/demo")
    args = ap.parse_args()
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        print("SKIP: chromium not installed (tools/setup.sh --tests installs Debian's chromium)")
        return 77
    demo = pathlib.Path(args.demo)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        html = tmp / "r.html"
        r = subprocess.run([args.quantize, str(demo / "model.onnx"), "--calib", str(demo / "calib"), "--eval",
                            str(demo / "eval"), "--labels", str(demo / "labels.tsv"), "--max-drop", "1",
                            "-o", str(tmp / "q.onnx"), "--report-html", str(html), "-q"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"FAIL: quantize exited {r.returncode}: {r.stderr}")
        url = html.as_uri()
        dom = chromium("--dump-dom", url)
        if dom.returncode != 0 or "<html" not in dom.stdout:
            sys.exit(f"FAIL: chromium --dump-dom exited {dom.returncode}: {dom.stderr[-2000:]}")
        page = dom.stdout
        svg = re.search(r'<svg class="chart".*?</svg>', page, re.S)
        if not svg:
            sys.exit("FAIL: the rendered page has no per-layer chart")
        rows = re.findall(r'class="n">([^<]+)</text>', svg.group(0))
        bars = re.findall(r"<rect ", svg.group(0))
        print(f"chart: {len(rows)} labelled rows ({', '.join(rows)}), {len(bars)} rects")
        if len(rows) != 5 or not all(re.match(r"\w+ \(\w+\)", x) for x in rows):
            sys.exit(f"FAIL: expected 5 labelled node rows (the demo's quantized nodes), got {rows}")
        if len(bars) < 2 + 2 * len(rows):
            sys.exit(f"FAIL: expected two bars per row, got {len(bars)} rects")
        hists = re.findall(r'<svg class="hist".*?</svg>', page, re.S)
        print(f"histograms: {len(hists)} worst-layer figures")
        if not hists or not all(len(re.findall(r"<rect ", h)) >= 3 and len(re.findall(r'class="clip"', h)) == 2
                                for h in hists):
            sys.exit("FAIL: expected worst-layer value histograms, each with bars and two clip lines")
        for needle in ["PASSED", "budget: top-1 drop at most 1.00 pt; measured", "<h2>Summary</h2>"]:
            if needle not in page:
                sys.exit(f"FAIL: '{needle}' not in the rendered page")
        errors = [l for l in dom.stderr.splitlines() if re.search(r"Uncaught|ERR_FILE_NOT_FOUND|Failed to load", l)]
        if errors:
            sys.exit("FAIL: browser errors:\n" + "\n".join(errors))

        png = tmp / "r.png"
        shot = chromium("--window-size=1400,1800", f"--screenshot={png}", url)
        if shot.returncode != 0 or not png.exists():
            sys.exit(f"FAIL: chromium --screenshot exited {shot.returncode}: {shot.stderr[-2000:]}")
        img = Image.open(png).convert("RGB")
        blue = sum(1 for p in img.getdata() if p == (0x3b, 0x6f, 0xb6))
        red = sum(1 for p in img.getdata() if p == (0xc0, 0x50, 0x4d))
        print(f"screenshot {img.size[0]}x{img.size[1]}: {blue} layer-SQNR pixels, {red} sensitivity pixels")
        if blue < 500 or red < 500:
            sys.exit("FAIL: the chart's bars are not visible in the screenshot")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
