"""The road agent's writes and domain rules, by topic:

- photos.py: receive uploads (validate, locate, hash, store), idempotent per content hash;
- detection.py: run the vision engine on photos, make them safe to show (blur), store boxes;
- defects.py: snap detections to road segments, merge repeats, rank, create work orders, segment condition;
- cameras.py: camera runs (frames on a GPS track) and fixed-camera snapshots;
- retention.py: drop originals and crew positions after the retention period;
- tokens.py: the API tokens crews' phone apps upload with.
"""
