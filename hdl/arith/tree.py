"""The balanced adder tree every dot-product unit reduces its lanes with."""

__all__ = ["tree_sum"]


def tree_sum(terms):
    """Balanced binary adder tree over ``terms`` (depth ``ceil(log2 len(terms))``).

    Amaranth widens every addition, so nothing overflows. Pairs are ``(0,1), (2,3), ...``;
    an odd last term passes to the next level unchanged.
    """
    terms = list(terms)
    if not terms:
        raise ValueError("tree_sum needs at least one term")
    while len(terms) > 1:
        nxt = [terms[k] + terms[k + 1] for k in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]
