"""Drives the Swagger UI in headless Chromium (Debian's, through
Playwright) the way a user does: opens GET .../namespaces/{namespace}/pods,
turns on "Try it out", fills in the namespace, presses "Execute", and checks
that the UI shows the server's 200 and a PodList; then does the same for a
pod that does not exist and expects the 404 Status. Any page error or
Content-Security-Policy violation fails the run.
Usage: swagger_try_it_out.py SWAGGER_UI_URL SCREENSHOT_PATH"""

import sys

from playwright.sync_api import sync_playwright

url, shot = sys.argv[1], sys.argv[2]
LIST = "/api/v1/namespaces/{namespace}/pods"
GET = "/api/v1/namespaces/{namespace}/pods/{name}"


def operation(page, path):
    summary = page.locator(
        f'.opblock-get .opblock-summary:has([data-path="{path}"])').first
    summary.click()
    return page.locator(f'.opblock-get:has([data-path="{path}"])').first


def try_it(block, values):
    # The UI may open operations with "Try it out" already on (the button
    # then reads "Cancel").
    button = block.locator("button.try-out__btn")
    if button.inner_text().strip() == "Try it out":
        button.click()
    for name, value in values.items():
        block.locator(f'tr[data-param-name="{name}"] input').fill(value)
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=20000)
    body = block.locator(".live-responses-table .response-col_description pre").first.inner_text()
    # An answer the document does not list (404) is marked "Undocumented".
    return status.inner_text().split()[0], body


problems = []
with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    page = browser.new_page(viewport={"width": 1280, "height": 2000})
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # The browser logs the 404 this run provokes; any other error counts.
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" and "status of 404" not in m.text else None)
    page.goto(url)
    page.wait_for_selector(f'[data-path="{LIST}"]', timeout=30000)

    block = operation(page, LIST)
    status, body = try_it(block, {"namespace": "default"})
    print("list:", status)
    assert status == "200", (status, body)
    assert '"kind": "PodList"' in body or '"kind":"PodList"' in body, body

    block = operation(page, GET)
    status, body = try_it(block, {"namespace": "default", "name": "no-such-pod"})
    print("get:", status)
    assert status == "404", (status, body)
    assert "NotFound" in body, body

    page.screenshot(path=shot, full_page=False)
    browser.close()

assert not problems, problems
print("ok")
