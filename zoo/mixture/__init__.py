"""Every Gaussian mixture of the zoo, in one family.

Estimators with scikit-learn's surface, fitted by the EM driver of :mod:`._base`:
:class:`GaussianMixture` (maximum likelihood, tempered EM) and :class:`BayesianGaussianMixture`
(variational Bayes by CAVI; the conjugate maths in :mod:`.gauss_wishart`), siblings over
:class:`BaseGaussianMixture`; :class:`KMeans` and :func:`kmeans_plusplus`. They evaluate
Gaussians through the kernels of :mod:`._gaussian`, one function per step and covariance type.
"""
from .bayesian_mixture import BayesianGaussianMixture
from .gaussian_mixture import BaseGaussianMixture, DegenerateComponentWarning, GaussianMixture
from .kmeans import KMeans, kmeans_plusplus

__all__ = [
    "BaseGaussianMixture", "GaussianMixture", "BayesianGaussianMixture", "DegenerateComponentWarning", "KMeans",
    "kmeans_plusplus",
]
