"""The controlled-fuzziness experiment (paper section 3) on the synthetic corpus: `mrpn fuzzy` and `mrpn demo`."""
