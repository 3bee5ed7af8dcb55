"""Training and fine-tuning of the learned backends (GC-Net, GA-Net, PSMNet, MC-CNN).

    from depthapp.training import TrainConfig, train
    result = train(TrainConfig(backend="gcnet", data="synthetic", out="runs/gcnet", iters=20000))

- :mod:`.synthetic`: procedural stereo pairs with exact ground truth (nothing to download);
- :mod:`.losses`: supervised smooth-L1, self-supervised photometric, distillation;
- :mod:`.data`: ``--data`` specs, augmentation, deterministic batches;
- :mod:`.models`: one small adapter per network;
- :mod:`.trainer`: the loop (checkpoints, exact resume, ``train_log.csv``, freezing, AMP);
- :mod:`.card`: exported weights, model card and registry record;
- :mod:`.adapt`: "adapt to my camera" (photometric fine-tuning on the user's own pairs).

Importing this package imports torch.
"""

from .trainer import TrainConfig, TrainResult, Trainer, parse_crop, train

__all__ = ["TrainConfig", "TrainResult", "Trainer", "adapt_to_camera", "parse_crop", "train"]


def __getattr__(name):
    if name == "adapt_to_camera":
        from .adapt import adapt_to_camera

        return adapt_to_camera
    raise AttributeError(name)
