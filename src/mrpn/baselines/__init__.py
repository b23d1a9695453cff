"""Reference baselines for RAVDESS audio (issue 9): what a user would try before the AM.

- `mfcc`: MFCC statistics of a whole clip (for an RBF SVM);
- `ge2e`: a frozen GE2E speaker encoder (resemblyzer's weights, loaded with weights_only=True);
- `clipcnn`: a small log-mel CNN over the whole clip, trained from scratch.

`bench/audio_baselines.py` runs them side by side on the paper's 12 folds.
"""
