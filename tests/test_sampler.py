from collections import Counter

import pytest

from reid.data.samplers import PKBatchSampler

PIDS = [pid for pid in range(10) for _ in range(3 + pid % 4)]  # 3 to 6 images per identity


def test_batches_hold_p_identities_with_k_images_each():
    sampler = PKBatchSampler(PIDS, p=4, k=2, seed=0)
    batches = list(sampler)
    assert batches
    for batch in batches:
        counts = Counter(PIDS[i] for i in batch)
        assert len(batch) == 8 and len(counts) == 4 and set(counts.values()) == {2}


def test_an_epoch_covers_most_images_and_len_matches():
    sampler = PKBatchSampler(PIDS, p=4, k=2, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    seen = {i for batch in batches for i in batch}
    assert len(seen) >= 0.7 * len(PIDS)


def test_identity_with_fewer_than_k_images_is_sampled_with_replacement():
    pids = [0, 1, 1, 1, 1, 2, 2, 2, 2]
    batch = next(iter(PKBatchSampler(pids, p=3, k=4, seed=1)))
    assert Counter(pids[i] for i in batch) == {0: 4, 1: 4, 2: 4}


def test_seed_and_epoch_fix_the_order():
    a, b = PKBatchSampler(PIDS, 4, 2, seed=5), PKBatchSampler(PIDS, 4, 2, seed=5)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)


def test_rejects_impossible_batches():
    with pytest.raises(ValueError, match="only 10"):
        PKBatchSampler(PIDS, p=11, k=2)
    with pytest.raises(ValueError, match="at least 2"):
        PKBatchSampler(PIDS, p=1, k=2)
