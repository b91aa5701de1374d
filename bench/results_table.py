"""Print a markdown table from genrec eval JSON files (one row per model and file, in argument order).

Columns: test NDCG@10, HR@10, MRR, validation NDCG@10 (what early stopping chose on; for models without
early stopping it is only reported), and training seconds (wall clock; not a speed figure on a shared machine).
"""
import json
import sys

rows = []
for path in sys.argv[1:]:
    with open(path) as f:
        r = json.load(f)
    for m in r["results"]:
        rows.append((r["dataset"], r["protocol"], m["model"], m["metrics"].get("NDCG@10"),
                     m["metrics"].get("HR@10"), m["metrics"].get("MRR"), m.get("valid_ndcg10"),
                     m["train_seconds"]))
print("| dataset | protocol | model | NDCG@10 | HR@10 | MRR | valid NDCG@10 | train s |")
print("|---|---|---|---|---|---|---|---|")
for d, p, m, n, h, mrr, v, t in rows:
    vs = f"{v:.4f}" if v is not None else "–"
    print(f"| {d} | {p} | {m} | {n:.4f} | {h:.4f} | {mrr:.4f} | {vs} | {t:.1f} |")
