#!/usr/bin/env python3
"""Drives the lm-serve web page in headless Chromium and checks it end to end.

Usage: venv/bin/python check_page.py BASE_URL [--api-key KEY] [--max-tokens N] [--timeout S] [--out DIR]
e.g.   venv/bin/python check_page.py http://127.0.0.1:8099

Needs: apt-get install chromium chromium-driver; pip install selenium (in a venv).
Exits 0 when every check passed; prints one line per check.
"""
import argparse, base64, json, math, os, struct, sys, time, urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

ap = argparse.ArgumentParser()
ap.add_argument("base_url")
ap.add_argument("--api-key", default="")
ap.add_argument("--max-tokens", type=int, default=32, help="keeps answers short on a slow real model")
ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for one answer or inspect")
ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
args = ap.parse_args()
base = args.base_url.rstrip("/")
os.makedirs(args.out, exist_ok=True)

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print(("PASS " if ok else "FAIL ") + name + (f" — {detail}" if detail else ""), flush=True)
    return ok


opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
wait = WebDriverWait(driver, args.timeout)
el = lambda css: driver.find_element(By.CSS_SELECTOR, css)
els = lambda css: driver.find_elements(By.CSS_SELECTOR, css)


def set_field(css, value):
    f = el(css)
    f.clear()
    f.send_keys(str(value))


def last_assistant_done(n):
    """Waits until there are n assistant messages and the last one's stream has ended."""
    wait.until(lambda d: len(els(".assistant")) >= n and els(".assistant")[n - 1].get_attribute("data-done") == "true")
    return els(".assistant")[n - 1]


def api_inspect(messages, layer=0):
    req = urllib.request.Request(base + "/v1/inspect", data=json.dumps({"messages": messages, "layer": layer}).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": "Bearer " + args.api_key} if args.api_key else {})})
    with urllib.request.urlopen(req, timeout=args.timeout) as r:
        return json.load(r)


def expected_percent(data, T, n=20):
    """Reference softmax(logits / T) in Python, to compare with what the page shows."""
    raw = base64.b64decode(data["logits"])
    logits = struct.unpack(f"<{data['vocab_size']}f", raw)
    m = max(logits)
    z = sum(math.exp((l - m) / T) for l in logits)
    ps = [math.exp((logits[t["id"]] - m) / T) / z for t in data["top"][:n]]
    h = -sum(p * math.log2(p) for p in (math.exp((l - m) / T) / z for l in logits) if p > 0)
    return ps, h


def shown_percent(text):
    text = text.strip().rstrip("%")
    return 0.0 if text.startswith("<") else float(text) / 100


try:
    # 1. Page load: header shows the model id, status becomes ready.
    driver.get(base + "/")
    if args.api_key:
        set_field("#api-key", args.api_key)
        el("#api-key").send_keys(Keys.TAB)        # 'change' event refetches /v1/models with the key
    wait.until(lambda d: el("#model-id").text not in ("", "loading…"))
    check("header shows model id", True, el("#model-id").text)
    wait.until(lambda d: el("#status").text == "ready")
    check("status ready after load", True)
    set_field("#max-tokens", args.max_tokens)

    # 2. Chat: click Send, wait for the streamed answer to finish.
    el("#prompt").send_keys("Hello! Explain attention in one sentence.")
    el("#send").click()
    a1 = last_assistant_done(1)
    text1 = a1.find_element(By.CSS_SELECTOR, ".content").text
    check("first answer streamed, non-empty", bool(text1.strip()) and "error" not in a1.get_attribute("class"), text1[:60])
    meta = a1.find_element(By.CSS_SELECTOR, ".meta").text
    check("answer meta has tok/s and finish_reason", "tok/s" in meta and "finish_reason" in meta, meta)
    check("status ready after answer", el("#status").text.startswith("ready"), el("#status").text)
    check("stop hidden again, send enabled", not el("#stop").is_displayed() and el("#send").is_enabled())

    # 3. Enter sends (Shift+Enter only adds a newline).
    el("#prompt").send_keys("Line one", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "line two")
    check("Shift+Enter keeps text in the box", "\n" in el("#prompt").get_attribute("value") and len(els(".assistant")) == 1)
    el("#prompt").send_keys(Keys.ENTER)
    a2 = last_assistant_done(2)
    check("Enter sent the second message", bool(a2.find_element(By.CSS_SELECTOR, ".content").text.strip()))

    # 4. Stop while streaming (a fast server may finish first; then there is nothing to stop).
    set_field("#max-tokens", 200)
    el("#prompt").send_keys("Tell me a long story.", Keys.ENTER)
    wait.until(lambda d: len(els(".assistant")) >= 3 and (els(".assistant")[2].find_element(By.CSS_SELECTOR, ".content").text
                                                          or els(".assistant")[2].get_attribute("data-done") == "true"))
    stopped = False
    if el("#stop").is_displayed():
        el("#stop").click()
        stopped = True
    a3 = last_assistant_done(3)
    m3 = a3.find_element(By.CSS_SELECTOR, ".meta").text
    check("Stop ends the stream", (not stopped) or "stopped" in m3, m3)
    set_field("#max-tokens", args.max_tokens)

    # 5. Inside the model: tokens, distribution.
    el("#inside-tab").click()
    check("#inside visible after clicking #inside-tab", el("#inside").is_displayed())
    wait.until(lambda d: el("#inside").get_attribute("data-state") in ("ready", "error"))
    check("inspect succeeded", el("#inside").get_attribute("data-state") == "ready", el("#inside-error").text)
    wait.until(lambda d: els("#tokens .token") and els("#distribution .bar"))
    chips = els("#tokens .token")
    check("token chips shown", len(chips) > 0, f"{len(chips)} chips; first title: {chips[0].get_attribute('title')}")
    bars = els("#distribution .bar")
    check("20 distribution bars", len(bars) == 20, str(len(bars)))

    # Compare the page's numbers with an independent softmax over the same logits.
    last_sent = driver.execute_script("return state.inspected")  # what the page inspected (may be shortened)
    data = api_inspect(last_sent, 0)
    check("chip count matches /v1/inspect", len(chips) == len(data["tokens"]))

    def compare(T):
        ps, h = expected_percent(data, T)
        shown = [shown_percent(b.find_element(By.CSS_SELECTOR, ".pct").text) for b in els("#distribution .bar")]
        worst = max(abs(a - b) for a, b in zip(ps, shown) if b > 0 or a < 1e-4)
        ent = float(el("#entropy").text.split()[1])
        return worst, abs(ent - h), shown[0]

    worst, dh, top1_at_1 = compare(1.0)
    check("probabilities at T=1 match reference", worst < 0.0006 and dh < 0.01, f"max diff {worst:.5f}, entropy diff {dh:.4f}")

    # Move the slider with the keyboard: Home = 0.05, then 5 steps right = 0.30.
    slider = el("#temperature")
    slider.send_keys(Keys.HOME)
    for _ in range(5):
        slider.send_keys(Keys.ARROW_RIGHT)
    T = float(slider.get_attribute("value"))
    check("slider moved", abs(T - 0.30) < 1e-6 and el("#temperature-value").text == "0.30", f"T={T}")
    worst, dh, top1 = compare(T)
    check("probabilities at T=0.30 match reference", worst < 0.0006 and dh < 0.01, f"max diff {worst:.5f}, entropy diff {dh:.4f}")
    check("lower T sharpens the top token", top1 >= top1_at_1, f"{top1_at_1:.3f} -> {top1:.3f}")
    # Drag the slider with the mouse too, towards the right end.
    ActionChains(driver).click_and_hold(slider).move_by_offset(int(slider.size["width"] * 0.45), 0).release().perform()
    check("slider dragged", float(slider.get_attribute("value")) > 1.5, slider.get_attribute("value"))

    # 6. Attention: layer switch refetches, head grid, hover readout.
    layers = len(Select(el("#layer")).options)
    heads = len(Select(el("#head")).options) - 1
    check("layer/head selectors filled", layers == data["layers"] and heads == data["heads"], f"{layers} layers, {heads} heads")
    Select(el("#layer")).select_by_value("1" if layers > 1 else "0")
    wait.until(lambda d: el("#inside").get_attribute("data-layer") == ("1" if layers > 1 else "0")
               and el("#inside").get_attribute("data-state") == "ready")
    check("layer switch re-fetched", True, "layer " + el("#inside").get_attribute("data-layer"))
    canvas = el("#attention-canvas")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    w = canvas.size["width"]
    # Hover near the bottom-left of the grid: a late query looking at an early key.
    ActionChains(driver).move_to_element_with_offset(canvas, -w // 2 + int(w * 0.3), w // 2 - 5).perform()
    readout = el("#attention-readout").text
    check("hover readout", readout.startswith("query token") and "→ key token" in readout, readout)
    Select(el("#head")).select_by_value("all")
    wait.until(lambda d: len(els("#attention-grid canvas")) == heads)
    check("all-heads grid", True, f"{heads} small maps")
    small = els("#attention-grid canvas")[min(2, heads - 1)]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", small)
    small.click()
    check("clicking a small map selects that head",
          el("#head").get_attribute("value") == str(min(2, heads - 1)) and el("#attention-canvas").is_displayed())

    driver.save_screenshot(os.path.join(args.out, "page.png"))
    print("screenshot", os.path.join(args.out, "page.png"))

    # 7. A server error is shown in the chat (max_tokens far beyond any context -> 400).
    el("#settings-tab").click()
    set_field("#max-tokens", 10000000)
    el("#prompt").send_keys("This should fail.", Keys.ENTER)
    a4 = last_assistant_done(4)
    check("server error shown in chat", "error" in a4.get_attribute("class") and "Error:" in a4.text, a4.text[:120])
    check("status shows error", el("#status").text.startswith("error:"), el("#status").text[:100])
    set_field("#max-tokens", args.max_tokens)

    # 8. Narrow layout screenshot (one column), then New chat clears everything.
    driver.set_window_size(420, 900)
    h = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(420, min(h + 150, 4000))
    driver.save_screenshot(os.path.join(args.out, "page-narrow.png"))
    print("screenshot", os.path.join(args.out, "page-narrow.png"))
    driver.set_window_size(1400, 1000)
    el("#new-chat").click()
    check("New chat clears the messages", len(els("#messages .msg")) == 0)

    # 9. No JavaScript errors. Network entries for the deliberate 400 are expected and ignored.
    logs = driver.get_log("browser")
    for e in logs:
        print("  console:", e["level"], e["source"], e["message"][:200])
    bad = [e for e in logs if e["level"] == "SEVERE" and e["source"] != "network"]
    check("no JavaScript errors in console", not bad, f"{len(bad)} errors")
except Exception as ex:
    check("script ran to the end", False, f"{type(ex).__name__}: {ex}")
    try:
        driver.save_screenshot(os.path.join(args.out, "failure.png"))
        for e in driver.get_log("browser"):
            print("  console:", e["level"], e["source"], e["message"][:200])
    except Exception:
        pass
finally:
    driver.quit()

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
