"""mrpn.evaluation.metrics helpers not covered by the report tests."""


def test_paired_difference_is_fold_by_fold_with_a_standard_error():
    from mrpn.evaluation.metrics import paired_difference

    # differences +10, 0, -4 (the fold with a None is left out): mean +2.0, sample std 7.21, SE 4.16
    assert paired_difference([70, 60, 50, None], [60, 60, 54, 40]) == \
        "+2.0 ± 4.2 points over 3 folds; better on 1, worse on 1"
    assert paired_difference([70], [60]) == "+10.0 points over 1 folds; better on 1, worse on 0"
    assert paired_difference([None], [60]) == "no fold in common"
