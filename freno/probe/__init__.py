"""
Probing: per-host metric reads on LoopingCalls, aggregation to one value per
cluster, and the freshness rules that keep stale truth from answering "go".
"""
