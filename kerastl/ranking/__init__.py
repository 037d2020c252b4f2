"""Backbone ranking: which pretrained backbone to fine-tune, judged before training.

`rank_backbones` scores each candidate's frozen features on the user's data
(LogME, or a cross-validated linear probe), with a random-initialised
reference that flags negative transfer.

Example:
    >>> data = kerastl.data.from_directory("flowers", image_size=160, validation_split=0.2)
    >>> print(kerastl.ranking.rank_backbones(data, "mobilenet_v2,mobilenet(alpha=0.25)"))
"""

from kerastl.ranking.candidates import Candidate, as_candidates, split_candidates
from kerastl.ranking.logme import logme
from kerastl.ranking.rank import METRICS, rank_backbones, score_features
from kerastl.ranking.table import BackboneRanking, NegativeTransferWarning, RankedBackbone

__all__ = ["BackboneRanking", "Candidate", "METRICS", "NegativeTransferWarning",
           "RankedBackbone", "as_candidates", "logme", "rank_backbones", "score_features",
           "split_candidates"]
