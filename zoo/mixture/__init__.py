"""Every Gaussian mixture of the zoo, in one family.

Estimators with scikit-learn's surface, fitted by the EM driver of :mod:`._base`:
:class:`GaussianMixture` (maximum likelihood, tempered EM) and :class:`BayesianGaussianMixture`
(variational Bayes by CAVI; the conjugate maths in :mod:`.gauss_wishart`), siblings over
:class:`BaseGaussianMixture`; :class:`KMeans` and :func:`kmeans_plusplus`. Pyro models with the
component index enumerated out, over :class:`EnumeratedMixture`: :class:`GaussianMixtureModel`
(registered as ``gmm``) and :class:`BayesianGMM` (``bayesian_gmm``). All of them evaluate
Gaussians through the kernels of :mod:`._gaussian`, one function per step and covariance type.
:mod:`.concentration` chooses the weight concentration of :class:`BayesianGaussianMixture` by its
full ELBO (seed 002's full-Bayes step). :mod:`.online` is the estimators' ``partial_fit``: online EM
and stochastic variational inference for data seen once.
"""
from .._estimator import expected_failed_checks
from .bayesian_gmm import BayesianGMM, BayesianGMMGuide, Wishart, bayesian_gmm, stick_breaking
from .bayesian_mixture import BayesianGaussianMixture
from .gaussian_mixture import BaseGaussianMixture, DegenerateComponentWarning, GaussianMixture
from .gmm import EnumeratedMixture, GaussianMixtureGuide, GaussianMixtureModel, gmm
from .kmeans import KMeans, kmeans_plusplus

__all__ = [
    "BaseGaussianMixture", "GaussianMixture", "BayesianGaussianMixture", "DegenerateComponentWarning", "KMeans",
    "kmeans_plusplus", "EnumeratedMixture", "GaussianMixtureModel", "GaussianMixtureGuide", "gmm", "BayesianGMM",
    "BayesianGMMGuide", "Wishart", "stick_breaking", "bayesian_gmm", "expected_failed_checks",
]
