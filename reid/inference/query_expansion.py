def alpha_query_expansion(*a, **k):
    raise NotImplementedError


def database_side_augmentation(*a, **k):
    raise NotImplementedError
