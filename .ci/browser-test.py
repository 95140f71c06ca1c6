#!/usr/bin/env python3
"""The reader's web pages in a real browser (headless Chromium through selenium).

Starts `paywall serve --demo` on a free loopback port with a temporary database and key
folder, then walks the journey the seed page promises: the seed article anonymously
(teaser and offers, the rest absent from the page source) -> sign up -> metered full
articles -> free articles used up -> teaser -> start the trial -> full text -> sign out ->
teaser again; the confirmation link from the mail (its token read from the URL fragment by
the page's script); a member's gift link; the admin area with a token from the CLI.
Screenshots of the teaser, the full article, the account page and the admin decisions at desktop
(1280) and phone (390) widths go to $PAYWALL_TEST_SCREENSHOTS (default /tmp/paywall-screenshots).
Fails on any browser console error, on any serious or critical axe-core violation in a
page, and when a leak crawl (every URL the site links or serves, as an anonymous reader and
as a signed-in reader without a membership) finds a paragraph the reader may not read.

Needs: Debian `chromium chromium-driver`; PyPI `selenium==4.52.0 axe-selenium-python==3.0.0`.
Usage: python3 .ci/browser-test.py [path to the paywall binary]
"""
import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from axe_selenium_python import Axe
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Absolute: the server and the CLI run in a temporary folder (`.ci/run` passes a relative path).
BINARY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "debug", "paywall")
SHOTS = os.environ.get("PAYWALL_TEST_SCREENSHOTS", "/tmp/paywall-screenshots")
ARTICLES = json.load(open(os.path.join(ROOT, "Sources", "PaywallWeb", "Content", "demo-articles.json")))["articles"]
SEED = next(a for a in ARTICLES if a["id"] == "zelenskyy-talks")
SEED_PATH = "/titles/euronews/articles/zelenskyy-talks"

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message, flush=True)
    return condition


def path_of(article):
    return f"/titles/{article['title']}/articles/{article['id']}"


def normalized(text):
    """Text as a reader would find it, whatever the escaping (HTML entities, JSON)."""
    return html.unescape(text).replace('\\"', '"').replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&")


def leaks(body, paragraph):
    text = normalized(body)
    if paragraph in text:
        return True
    middle = len(paragraph) // 2
    return len(paragraph) > 60 and paragraph[middle - 20:middle + 20] in text


# MARK: - The server

def start_server(folder):
    process = subprocess.Popen(
        [BINARY, "serve", "--demo", "--host", "127.0.0.1", "--port", "0",
         "--db", os.path.join(folder, "paywall.sqlite"), "--keys", os.path.join(folder, "Keys"),
         "--policies", os.path.join(ROOT, "Policies")],
        cwd=folder, stdout=subprocess.PIPE, stderr=open(os.path.join(folder, "server.log"), "w"), text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if match:
            return process, match.group(1)
    process.kill()
    sys.exit("the server did not start:\n" + open(os.path.join(folder, "server.log")).read())


# MARK: - The browser

def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=options)


def console_errors(driver, allow=()):
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    return [e for e in errors if not any(a in e.get("message", "") for a in allow)]


def visit(driver, base, path, allow_status=None):
    driver.get(base + path)
    allowed = (base + path,) if allow_status else ()
    for error in console_errors(driver, allowed):
        check(False, f"console error on {path}: {error.get('message')}")


def axe_check(driver, label):
    axe = Axe(driver)
    axe.inject()
    results = axe.run()
    bad = [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]
    for violation in bad:
        check(False, f"axe {violation['impact']} on {label}: {violation['id']}: {violation['help']} "
                     f"({', '.join(n['target'][0] for n in violation['nodes'][:3])})")
    print(f"axe {label}: {len(results['violations'])} violations, {len(bad)} serious or critical", flush=True)


def screenshots(driver, name):
    os.makedirs(SHOTS, exist_ok=True)
    for label, width in (("desktop", 1280), ("phone", 390)):
        driver.set_window_size(width, 900)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(max(height, 600), 6000))
        if label == "phone":
            overflow = driver.execute_script("return document.documentElement.scrollWidth > document.documentElement.clientWidth")
            check(not overflow, f"{name}: the page scrolls sideways at {width} px")
        driver.save_screenshot(os.path.join(SHOTS, f"{name}-{label}.png"))
    driver.set_window_size(1280, 900)


def click_through(driver, by, selector, url, seconds=10):
    """Clicks a form's button and waits until its POST and redirect have landed on `url`.
    A click returns before they may have, and a redirect back to the page the form was on
    leaves the URL as it was (it raced twice in CI): so the old document must have gone too.
    The old document is marked with a script variable a new one does not have; asking an old
    element whether it is stale raced as well (Chrome answered "node does not belong to the
    document" mid-navigation, not "stale")."""
    driver.execute_script("window.__paywallOldPage = true")
    driver.find_element(by, selector).click()
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            still_old = driver.execute_script("return window.__paywallOldPage === true")
            if not still_old and driver.current_url == url:
                break
        except WebDriverException:
            pass  # mid-navigation: there is no document to ask yet
        time.sleep(0.05)
    check(driver.current_url == url, f"expected to arrive at {url}, at {driver.current_url}")


def body_text(driver):
    return driver.find_element(By.TAG_NAME, "main").text


def wait_text(driver, words, seconds=10):
    """A page that navigates by itself (a form sent by a script, a click) shows `words`;
    the old page's elements go stale meanwhile."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if words in body_text(driver):
                return True
        except WebDriverException:  # stale, missing, or "node does not belong to the document" mid-navigation
            pass
        time.sleep(0.05)
    return False


def fill(driver, fields):
    for name, value in fields.items():
        element = driver.find_element(By.NAME, name)
        element.clear()
        element.send_keys(value)


# MARK: - The leak crawl

def fetch(url, cookies):
    request = urllib.request.Request(url, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode("utf-8", "replace")


def crawl(base, cookies, label):
    """Every URL the site links or serves, fetched raw (what reaches the browser), as the
    reader the cookies name. Article pages with the paywall box say how much was allowed;
    no other part of those articles may appear anywhere."""
    queue = ["/", "/feed.xml", "/sitemap.xml", "/openapi.json", "/static/site.css", "/titles/euronews/articles/nope", "/nope"]
    seen, bodies, forbidden = set(), {}, []
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        status, headers, body = fetch(base + path, cookies)
        bodies[path] = "\n".join(f"{k}: {v}" for k, v in headers.items()) + "\n\n" + body
        for link in re.findall(r'href="(/[^"]*)"', body) + [urllib.parse.urlsplit(u).path for u in re.findall(r"<loc>([^<]+)</loc>", body)]:
            link = html.unescape(link)
            if link not in seen:
                queue.append(link)
        article = next((a for a in ARTICLES if path_of(a) == path), None)
        if article and 'class="paywall"' in body:
            shown = 0
            while shown < len(article["paragraphs"]) and leaks(body, article["paragraphs"][shown]):
                shown += 1
            check(shown <= 3, f"{label}: {path} shows {shown} paragraphs with the paywall box")
            forbidden += [(path, p) for p in article["paragraphs"][shown:]]
    for article in ARTICLES:
        check(path_of(article) in seen, f"{label}: the crawl never reached {path_of(article)}")
    check(len(forbidden) > 20, f"{label}: only {len(forbidden)} gated paragraphs found: the crawl is not seeing the paywall")
    for path, body in bodies.items():
        for source, paragraph in forbidden:
            check(not leaks(body, paragraph), f"{label}: {path} leaks a gated paragraph of {source}: {paragraph[:60]}")
    print(f"leak crawl as {label}: {len(seen)} URLs, {len(forbidden)} gated paragraphs, none found", flush=True)


# MARK: - The journey

def mailed_token(folder, email, page):
    """The newest link of a kind in the outbox (the server's database; no mail is sent)."""
    with sqlite3.connect(os.path.join(folder, "paywall.sqlite")) as db:
        rows = db.execute("SELECT body FROM outbox WHERE recipient = ? ORDER BY id DESC", (email,)).fetchall()
    for (body,) in rows:
        match = re.search(r"/" + page + r"#token=([A-Za-z0-9_-]+)", body or "")
        if match:
            return match.group(1)
    return None


def gift_and_admin(driver, base, folder):
    """A member gives the seed article; the link opens it in full for a stranger. Then the
    admin area with a token from the CLI."""
    driver.delete_all_cookies()
    visit(driver, base, "/signin")
    fill(driver, {"email": "member@example.com", "password": "demo member passphrase"})
    click_through(driver, By.CSS_SELECTOR, "form[action='/signin'] button[type=submit]", base + "/account")
    visit(driver, base, SEED_PATH)
    driver.find_element(By.XPATH, "//button[contains(., 'Create a gift link')]").click()
    check(wait_text(driver, "Your gift link"), "gift: no gift link page")
    link = driver.find_element(By.ID, "gift-link").get_attribute("value")
    check(link.startswith(base + SEED_PATH + "?gift="), f"gift: unexpected link {link}")
    axe_check(driver, "the gift link page")
    driver.delete_all_cookies()
    visit(driver, base, link[len(base):])
    text = body_text(driver)
    check(all(p in text for p in SEED["paragraphs"]), "gift: the link does not open the article in full")
    other = next(a for a in ARTICLES if not a.get("free") and a.get("section") != "opinion" and a["id"] != SEED["id"])
    visit(driver, base, path_of(other) + link[len(base + SEED_PATH):], allow_status=403)
    check("This gift link does not work" in body_text(driver), "gift: the link opened another article")
    check(not leaks(driver.page_source, other["paragraphs"][-1]), "gift: another article's text is in the page")

    result = subprocess.run(
        [BINARY, "token", "admin", "--scope", "audit", "--scope", "policy", "--subject", "browser-test",
         "--db", os.path.join(folder, "paywall.sqlite"), "--keys", os.path.join(folder, "Keys")],
        cwd=folder, capture_output=True, text=True, timeout=60)
    tokens = re.findall(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", result.stdout)
    if not check(result.returncode == 0 and tokens, f"paywall token admin failed: {result.stderr.strip()}"):
        return
    visit(driver, base, "/admin", allow_status=401)
    axe_check(driver, "admin sign-in")
    fill(driver, {"token": tokens[-1]})
    # The sign-in form is served at /admin too: the page it was sent from must have gone.
    click_through(driver, By.CSS_SELECTOR, "form[action='/admin/signin'] button[type=submit]", base + "/admin")
    check("browser-test" in body_text(driver), "admin: not signed in")
    admin_cookie = next((c for c in driver.get_cookies() if c["name"] == "paywall_admin"), None)
    check(admin_cookie is not None and admin_cookie.get("httpOnly") and admin_cookie.get("sameSite") == "Strict"
          and admin_cookie.get("path") == "/admin", f"admin: the cookie is not HttpOnly, Strict, /admin: {admin_cookie}")
    axe_check(driver, "the admin home")
    for path, label, words in (("/admin/decisions", "recent decisions", "zelenskyy-talks"), ("/admin/reads", "reads this month", "euronews"),
                               ("/admin/policy", "the policy", "Revision")):
        visit(driver, base, path)
        check(words in body_text(driver), f"admin: {label} does not show {words}")
        axe_check(driver, f"admin: {label}")
    visit(driver, base, "/admin/decisions")
    screenshots(driver, "admin-decisions")


def journey(driver, base, folder):
    # 1. Anonymous: the seed article's teaser and offers; the rest is not in the page at all.
    visit(driver, base, SEED_PATH)
    text = body_text(driver)
    source = driver.page_source
    for paragraph in SEED["paragraphs"][:2]:
        check(paragraph in text, f"anonymous seed: teaser paragraph missing: {paragraph[:50]}")
    for paragraph in SEED["paragraphs"][2:]:
        check(not leaks(source, paragraph), f"anonymous seed: gated paragraph in the page source: {paragraph[:50]}")
    for words in ("Sign up to read this article", "Already a member? Sign in here", "Fourteen days free", "Start your 14-day free trial"):
        check(words in text, f"anonymous seed: '{words}' not visible")
    check('"cssSelector":".paywalled"' in source, "anonymous seed: JSON-LD hasPart missing")
    axe_check(driver, "the seed article (teaser)")
    screenshots(driver, "teaser")

    # 2. Sign up from the paywall box: back on the article, in full (a metered read).
    driver.find_element(By.LINK_TEXT, "Sign up").click()
    check("/signup" in driver.current_url, "the Sign up link did not open the sign-up page")
    axe_check(driver, "sign up")
    fill(driver, {"name": "Browser Reader", "email": "browser@example.com", "password": "a browser test passphrase"})
    click_through(driver, By.CSS_SELECTOR, "form[action='/signup'] button[type=submit]", base + SEED_PATH)
    for error in console_errors(driver):
        check(False, f"console error after sign up: {error.get('message')}")
    text = body_text(driver)
    for paragraph in SEED["paragraphs"]:
        check(paragraph in text, f"signed up: the seed article is not in full: {paragraph[:50]}")
    check("free articles left" in text, "signed up: no meter note")
    axe_check(driver, "the seed article (full)")
    screenshots(driver, "full-article")

    # 3. Two more metered articles, then the meter is spent: a teaser with the trial offer.
    gated = [a for a in ARTICLES if not a.get("free") and a.get("section") != "opinion" and a["id"] != SEED["id"]]
    for article in gated[:2]:
        visit(driver, base, path_of(article))
        check(article["paragraphs"][-1] in body_text(driver), f"metered: {path_of(article)} not in full")
    fourth = gated[2]
    visit(driver, base, path_of(fourth))
    text = body_text(driver)
    check("You’ve read your free articles this month" in text, "meter spent: no notice")
    check(not leaks(driver.page_source, fourth["paragraphs"][-1]), "meter spent: the rest of the article is in the page")
    axe_check(driver, "an article with the meter spent")

    # 4. The trial: the full text again.
    click_through(driver, By.XPATH, "//button[contains(., 'Start your 14-day free trial')]", base + path_of(fourth))
    check(fourth["paragraphs"][-1] in body_text(driver), "trial: the article is not in full")

    # 5. The account page: trial days left, free articles left, this device, the email
    # not confirmed yet.
    visit(driver, base, "/account")
    text = body_text(driver)
    check("14 days left" in text, "account: trial days left missing")
    check("0 of 3" in text, "account: free articles left missing")
    check("Sign out this device" in text and "This browser" in text, "account: the signed-in devices are missing")
    check("Not confirmed yet" in text, "account: the email is not said to be unconfirmed")
    axe_check(driver, "the account page")
    screenshots(driver, "account")

    # 5b. The confirmation link from the mail: the page's script reads the fragment, posts
    # it and removes it from the address bar; the account page then says so.
    token = mailed_token(folder, "browser@example.com", "verify-email")
    if check(token is not None, "no verification mail in the outbox"):
        visit(driver, base, "/verify-email#token=" + token)
        check(wait_text(driver, "Your email address is confirmed"), "verify email: the link did not confirm the address")
        check("#" not in driver.current_url, f"verify email: the token stayed in the address bar: {driver.current_url}")
        for error in console_errors(driver):
            check(False, f"console error on the verification: {error.get('message')}")
        axe_check(driver, "the email confirmed page")
        visit(driver, base, "/account")
        check("Confirmed" in body_text(driver) and "Not confirmed yet" not in body_text(driver), "account: the email is not confirmed")

    # 6. Sign out: the teaser again.
    click_through(driver, By.XPATH, "//header//button[contains(., 'Sign out')]", base + "/")
    check(not any(c["name"] == "paywall_session" for c in driver.get_cookies()), "signed out: the session cookie is still there")
    visit(driver, base, path_of(fourth))
    check("Sign up to read this article" in body_text(driver), "signed out: no paywall")
    check(not leaks(driver.page_source, fourth["paragraphs"][-1]), "signed out: the rest of the article is in the page")

    # Other pages, for axe and the console: the front page, sign in, a free article, a
    # headline-only article, an error page.
    for path, label in (("/", "the front page"), ("/signin", "sign in"), ("/forgot-password", "forgot password"),
                        ("/verify-email", "verify email (no code)"), ("/reset-password", "reset password"), ("/titles/euronews/articles/heatwave-advice", "a free article"),
                        ("/titles/le-monde/articles/tribune-four-day-week", "a headline-only article")):
        visit(driver, base, path)
        axe_check(driver, label)
    visit(driver, base, "/titles/euronews/articles/nope", allow_status=404)
    axe_check(driver, "the 404 page")


def main():
    folder = tempfile.mkdtemp(prefix="paywall-browser-")
    server, base = start_server(folder)
    driver = None
    try:
        driver = browser()
        journey(driver, base, folder)
        gift_and_admin(driver, base, folder)
        crawl(base, {}, "an anonymous reader")
        # A signed-in reader without a membership (the demo's reader@example.com): the
        # crawl's first article pages spend the meter, the rest are teasers.
        driver.delete_all_cookies()
        visit(driver, base, "/signin")
        fill(driver, {"email": "reader@example.com", "password": "demo reader passphrase"})
        click_through(driver, By.CSS_SELECTOR, "form[action='/signin'] button[type=submit]", base + "/account")
        cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
        check("paywall_session" in cookies, "sign in as reader@example.com failed")
        crawl(base, cookies, "a signed-in reader without a membership")
    finally:
        if driver:
            driver.quit()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"screenshots in {SHOTS}: {', '.join(sorted(os.listdir(SHOTS))) if os.path.isdir(SHOTS) else 'none'}")
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("browser test passed")


if __name__ == "__main__":
    main()
