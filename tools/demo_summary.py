"""Print a short summary of `bytehoven analyze` JSON Lines read from stdin (used by tools/demo.sh)."""

import json
import sys

for doc in map(json.loads, sys.stdin):
    verdict = doc["composer"] or doc["reason"]
    print(f"{doc['path']}: {doc['pages']} pages, {doc['rows']} rows, composer: {verdict} "
          f"(best guess {doc['best_guess']}, confidence {doc['confidence']}), on {doc['device']}")
    for page in doc["page_results"]:
        print(f"  page {page['page']}: {len(page['systems'])} rows, {page['composer'] or page['reason']} "
              f"(best guess {page['best_guess']}, {page['confidence']})")
