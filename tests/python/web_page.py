#!/usr/bin/env python3
"""Drives petal's web page in headless Chromium (Debian's chromium and chromium-driver)
with Selenium, as a radiologist or admin would, keyboard only where it matters:

1. signs in with a token (typed, submitted with Enter);
2. opens the study and the side-by-side viewer of a denoised series, moves the slice
   slider with the arrow keys and checks both images loaded;
3. opens the patient's page, watches the round (started by the study's N2N halves) until
   it is over, and rolls back to version 0 with the keyboard only;
4. triggers another round from the page and watches it to its end;
5. signs out.

Screenshots of the viewer and the patient page go to SCREENSHOT_DIR.

The SUVmax the viewer shows for the original slice is checked against the source file,
computed here from its raw header tags (scripts/reference/suv_check.py's formula).

usage: web_page.py BASE_URL TOKEN STUDY_UID SERIES_UID SOURCE_SERIES_DIR SCREENSHOT_DIR
prints one JSON object with what it saw.
"""
import glob
import json
import os
import sys
import time

import pydicom

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def round_states(driver):
    """The State column of the rounds table, read in one go (the table refreshes itself)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#rounds tr td:nth-child(2)')].map(td => td.textContent);"
    )


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main():
    base, token, study, series, source_dir, shots = sys.argv[1:7]
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "reference"))
    from suv_check import suv_factor
    os.makedirs(shots, exist_ok=True)
    seen = {}
    driver = browser()
    # Views re-render while polled: an element replaced under the wait is looked up again.
    wait = WebDriverWait(driver, 60, ignored_exceptions=[StaleElementReferenceException])
    try:
        driver.get(base + "/")
        field = wait.until(EC.visibility_of_element_located((By.ID, "token")))
        assert driver.switch_to.active_element == field, "the token field has the focus"
        field.send_keys(token, Keys.ENTER)
        wait.until(EC.visibility_of_element_located((By.ID, "view-studies")))
        seen["signed_in_as"] = driver.find_element(By.ID, "whoami").text

        # The study, then the viewer of the denoised series.
        wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, f"a[href='#/study/{study}']"))).click()
        view = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, f"a[href='#/series/{study}/{series}']")))
        seen["series_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#series tr"))
        view.send_keys(Keys.ENTER)
        wait.until(EC.visibility_of_element_located((By.ID, "view-viewer")))
        # The slider is enabled once the viewer knows the series' slices.
        slider = wait.until(EC.element_to_be_clickable((By.ID, "slice")))
        start = int(slider.get_attribute("value"))
        slider.send_keys(Keys.ARROW_RIGHT)
        seen["slice_moved"] = int(slider.get_attribute("value")) == start + 1

        def loaded(image_id):
            return driver.execute_script(
                "const i = document.getElementById(arguments[0]); return i.complete && i.naturalWidth > 0;", image_id
            )

        wait.until(lambda d: loaded("image-original") and loaded("image-denoised"))
        seen["images"] = [driver.find_element(By.ID, i).get_attribute("alt") for i in ("image-original", "image-denoised")]

        # The SUVmax shown for the original slice, against the source file's own header.
        readout = wait.until(lambda d: d.find_element(By.ID, "suv-readout").get_attribute("data-instance")
                             and d.find_element(By.ID, "suv-readout"))
        shown = float(readout.text.split("original ")[1].split(",")[0])
        uid = readout.get_attribute("data-instance")
        source = next(ds for ds in (pydicom.dcmread(f) for f in glob.glob(f"{source_dir}/*.dcm"))
                      if ds.SOPInstanceUID == uid)
        expected = float((source.pixel_array * float(source.RescaleSlope) + float(source.RescaleIntercept)).max()
                         * suv_factor(source))
        seen["suv_max_shown"], seen["suv_max_source"] = shown, expected
        driver.save_screenshot(os.path.join(shots, "viewer.png"))

        # The patient: the round finishes and its version is active; roll back with the keyboard.
        driver.back()
        wait.until(EC.visibility_of_element_located((By.ID, "view-study")))
        href = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#study-patient a").get_attribute("href"))
        driver.get(href)
        wait.until(EC.visibility_of_element_located((By.ID, "view-patient")))
        deadline = time.time() + 240
        while time.time() < deadline:
            states = round_states(driver)
            if states and not any(s.startswith(("queued", "running")) for s in states):
                break
            time.sleep(0.5)
        seen["rounds"] = states
        driver.refresh()
        wait.until(EC.visibility_of_element_located((By.ID, "view-patient")))
        wait.until(lambda d: d.find_element(By.ID, "active-version").text != "")
        seen["active_before"] = driver.find_element(By.ID, "active-version").text
        report = wait.until(EC.element_to_be_clickable((By.XPATH, "//button[starts-with(text(), 'Report of version')]")))
        report.send_keys(Keys.ENTER)
        wait.until(EC.visibility_of_element_located((By.ID, "report")))
        seen["report"] = driver.find_element(By.ID, "report-summary").text
        driver.save_screenshot(os.path.join(shots, "patient.png"))

        # Keyboard only: Tab to the rollback button and press Enter.
        rollback = driver.find_element(By.XPATH, "//button[text()='Activate version 0']")
        driver.find_element(By.ID, "patient-title").click()
        for _ in range(60):
            if driver.switch_to.active_element == rollback:
                break
            driver.switch_to.active_element.send_keys(Keys.TAB)
        assert driver.switch_to.active_element == rollback, "Tab reaches the rollback button"
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        wait.until(lambda d: "version 0" in d.find_element(By.ID, "active-version").text)
        seen["active_after"] = driver.find_element(By.ID, "active-version").text

        # Trigger a round from the page (keyboard) and watch it to its end.
        driver.find_element(By.ID, "start-round").send_keys(Keys.ENTER)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#rounds tr")) >= 2)
        deadline = time.time() + 240
        while time.time() < deadline:
            states = round_states(driver)
            if len(states) >= 2 and not any(s.startswith(("queued", "running")) for s in states):
                break
            time.sleep(0.5)
        seen["rounds_after_trigger"] = states

        driver.find_element(By.ID, "sign-out").send_keys(Keys.ENTER)
        wait.until(EC.visibility_of_element_located((By.ID, "view-sign-in")))
        seen["signed_out"] = True
    finally:
        driver.quit()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
