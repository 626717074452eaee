"""Validates FHIR files crest wrote with an independent FHIR library: fhir.resources 6.4
(PyPI), whose models are FHIR R4 (4.0.1). Every resource of a Bundle or of bulk-export NDJSON
files is parsed into its R4 model (unknown elements, wrong types and missing required elements
fail), and the UK Core parts are checked against what UK Core publishes:

- the NHS number identifier system https://fhir.nhs.uk/Id/nhs-number;
- the ethnic category extension
  https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory, a
  valueCodeableConcept coded from https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland
  (codes A-H, J-N, P, R, S, Z and 99, as the UK Core CodeSystem 1.1.1 lists them).

Usage: fhir_validate.py FILE.json|FILE.ndjson ... ; prints one JSON line of counts; exits 1 on
the first problem, naming the resource.
"""
import json
import sys

import fhir.resources
from fhir.resources import construct_fhir_element

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ETHNIC_EXTENSION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
ETHNIC_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"
ETHNIC_CODES = set("ABCDEFGHJKLMNPRSZ") | {"99"}


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def resources(path):
    with open(path, encoding="utf-8") as f:
        if path.endswith(".ndjson"):
            for line in f:
                if line.strip():
                    yield json.loads(line)
        else:
            bundle = json.load(f)
            construct_fhir_element("Bundle", {k: v for k, v in bundle.items() if k != "entry"})
            if bundle.get("type") != "collection":
                fail(f"{path}: Bundle type {bundle.get('type')}, expected collection")
            for e in bundle.get("entry", []):
                yield e["resource"]


def check_uk_core(r):
    key = f"{r['resourceType']}/{r.get('id')}"
    nhs = [i for i in r.get("identifier", []) if i.get("system") == NHS_NUMBER]
    if len(nhs) != 1 or len(nhs[0].get("value", "")) != 10 or not nhs[0]["value"].isdigit():
        fail(f"{key}: no NHS number identifier with system {NHS_NUMBER}")
    for x in r.get("extension", []):
        if "EthnicCategory" in x["url"]:
            if x["url"] != ETHNIC_EXTENSION:
                fail(f"{key}: ethnic category extension {x['url']}")
            codings = x["valueCodeableConcept"]["coding"]
            if not all(c["system"] == ETHNIC_SYSTEM and c["code"] in ETHNIC_CODES for c in codings):
                fail(f"{key}: ethnic category coding {codings}")
            return 1
    return 0


def main():
    assert fhir.resources.__fhir_version__ == "4.0.1", fhir.resources.__fhir_version__
    counts = {}
    ethnic = 0
    for path in sys.argv[1:]:
        for r in resources(path):
            t = r["resourceType"]
            try:
                construct_fhir_element(t, r)
            except Exception as e:  # the library's validation error, whatever its class
                fail(f"{t}/{r.get('id')} is not valid FHIR R4: {e}")
            if t == "Patient":
                ethnic += check_uk_core(r)
            counts[t] = counts.get(t, 0) + 1
    if not counts:
        fail("no resources")
    counts["patients_with_ethnic_category"] = ethnic
    print(json.dumps(counts, sort_keys=True))


main()
