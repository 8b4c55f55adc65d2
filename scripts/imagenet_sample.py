"""The 1000-image ImageNet sample of ../shared as the reference scripts read it: the image files in sorted name
order, each one's true class (the line of its wnid in synset_words.txt), and top-1 / top-5 counting over batches
of logits (make_deit_reference.py, make_hub_deit_reference.py)."""
import os


def sample_files(shared, limit=None):
    """(image folder, its image file names sorted [the first `limit`], {wnid: class index})."""
    img_dir = os.path.join(shared, "data", "imagenet-sample")
    with open(os.path.join(img_dir, "synset_words.txt")) as f:
        wnid_index = {line.split()[0]: i for i, line in enumerate(f.read().splitlines())}
    files = sorted(f for f in os.listdir(img_dir) if f.lower().endswith((".jpeg", ".jpg", ".png")))
    return img_dir, (files[:limit] if limit else files), wnid_index


class Score:
    """Top-1 / top-5 counts and a (file name, top-1 index, true index) row per image, fed batch by batch."""

    def __init__(self, wnid_index):
        self.wnid_index = wnid_index
        self.top1 = self.top5 = 0
        self.rows = []

    def add(self, names, logits):
        for n, row in zip(names, logits):
            true = self.wnid_index[n.split("_")[0]]
            best5 = row.topk(5).indices.tolist()
            self.top1 += best5[0] == true
            self.top5 += true in best5
            self.rows.append((n, best5[0], true))

    def summary(self):
        n = len(self.rows)
        return f"images {n}  top-1 {self.top1 / n:.4f}  top-5 {self.top5 / n:.4f}"
