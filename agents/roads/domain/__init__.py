"""The road agent's pure domain core (no Django): EXIF reading, ranking rules, GPS-track placement of
camera frames, and the privacy fallback blur. The Django layer (services) calls these."""
