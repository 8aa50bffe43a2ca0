import numpy as np
import torch

from reid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform, Preprocess, TrainTransform, random_erase


def test_test_transform_resizes_normalises_and_turns_bgr_into_rgb():
    image = np.zeros((40, 20, 3), np.uint8)
    image[:, :, 2] = 255  # pure red in BGR
    tensor = EvalTransform(Preprocess(height=64, width=32))(image)
    assert tensor.shape == (3, 64, 32)
    red = (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    blue = (0.0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]
    assert torch.allclose(tensor[0], torch.full((64, 32), red))
    assert torch.allclose(tensor[2], torch.full((64, 32), blue))


def test_train_transform_is_reproducible_under_a_seed_and_random_otherwise():
    image = np.random.default_rng(0).integers(0, 256, (64, 32, 3), dtype=np.uint8)
    transform = TrainTransform(Preprocess(height=64, width=32), flip=True, pad=4, erasing=0.5)
    torch.manual_seed(1)
    a = [transform(image) for _ in range(4)]
    torch.manual_seed(1)
    b = [transform(image) for _ in range(4)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(a[0], x) for x in a[1:])


def test_random_erasing_zeroes_one_rectangle():
    tensor = torch.ones(3, 64, 32)
    torch.manual_seed(0)
    random_erase(tensor)
    zero = tensor[0] == 0
    rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
    assert zero.sum() > 0
    assert zero.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # one filled rectangle
    assert torch.equal(tensor[0] == 0, tensor[2] == 0)


def test_preprocess_round_trips_through_a_dict():
    pre = Preprocess(height=96, width=48)
    assert Preprocess.from_dict(pre.to_dict()) == pre
