"""Print a markdown table (NDCG@10, HR@10, train seconds) from genrec eval JSON files."""
import json
import sys

rows = []
for path in sys.argv[1:]:
    with open(path) as f:
        r = json.load(f)
    for m in r["results"]:
        rows.append((r["dataset"], r["protocol"], m["model"], m["metrics"].get("NDCG@10"),
                     m["metrics"].get("HR@10"), m["metrics"].get("MRR"), m["train_seconds"]))
print("| dataset | protocol | model | NDCG@10 | HR@10 | MRR | train s |")
print("|---|---|---|---|---|---|---|")
for d, p, m, n, h, mrr, t in rows:
    print(f"| {d} | {p} | {m} | {n:.4f} | {h:.4f} | {mrr:.4f} | {t:.1f} |")
