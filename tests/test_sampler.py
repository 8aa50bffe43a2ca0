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


def test_distributed_shares_are_whole_identities_and_disjoint():
    world = 3
    samplers = [PKBatchSampler(PIDS, p=3, k=2, seed=4, rank=r, world_size=world) for r in range(world)]
    for s in samplers:
        s.set_epoch(2)
    shares = [list(s) for s in samplers]
    assert len({len(share) for share in shares}) == 1 and shares[0]
    for step in range(len(shares[0])):
        batches = [share[step] for share in shares]
        pid_sets = [{PIDS[i] for i in b} for b in batches]
        assert all(len(b) == 6 and len(p) == 3 for b, p in zip(batches, pid_sets))
        assert sum(len(p) for p in pid_sets) == len(set().union(*pid_sets))  # no identity on two processes
        assert sum(len(b) for b in batches) == len({i for b in batches for i in b})  # no shared element
    # the union over processes is exactly the global batch list every process computed
    assert [[b for b in parts] for parts in samplers[0].global_batches()] == [list(t) for t in zip(*shares)]


def test_one_process_batches_are_unchanged_by_the_distributed_code():
    single, one_of_one = PKBatchSampler(PIDS, 4, 2, seed=3), PKBatchSampler(PIDS, 4, 2, seed=3, rank=0, world_size=1)
    assert list(single) == list(one_of_one) == [parts[0] for parts in single.global_batches()]


def test_set_start_skips_batches_and_state_dict_round_trips():
    sampler = PKBatchSampler(PIDS, 4, 2, seed=1)
    sampler.set_epoch(3)
    full = list(sampler)
    sampler.set_start(2)
    assert list(sampler) == full[2:] and len(sampler) == len(full) - 2
    other = PKBatchSampler(PIDS, 4, 2, seed=9)
    other.load_state_dict(sampler.state_dict())
    assert list(other) == full[2:]


def test_too_few_identities_for_all_processes_is_refused():
    with pytest.raises(ValueError, match="4 x 3"):
        PKBatchSampler(PIDS, p=4, k=2, world_size=3, rank=0)


def test_augmentations_do_not_depend_on_workers_or_a_mid_epoch_start(tiny_root):
    """Per-sample seeds: the same images with 0 or 1 workers, and after skipping to batch 2."""
    import torch

    from reid.data.datasets import build_dataset
    from reid.data.loaders import train_loader
    from reid.data.transforms import Preprocess, TrainTransform

    records = build_dataset("synthetic", str(tiny_root)).train
    transform = TrainTransform(Preprocess(64, 32), pad=4, erasing=0.5)
    runs = []
    for workers, start in ((0, 0), (1, 0), (0, 2)):
        loader = train_loader(records, transform, 3, 2, seed=5, workers=workers)
        loader.batch_sampler.set_epoch(1)
        loader.batch_sampler.set_start(start)
        torch.manual_seed(123 + workers)  # the caller's RNG must not matter
        before = torch.get_rng_state()
        runs.append([images for images, *_ in loader])
        assert workers or torch.equal(torch.get_rng_state(), before)  # and is left untouched
    assert len(runs[0]) == len(runs[1]) == len(runs[2]) + 2
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert all(torch.equal(a, b) for a, b in zip(runs[0][2:], runs[2]))
    assert not torch.equal(runs[0][0], runs[0][1])
