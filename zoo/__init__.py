"""A zoo of latent-variable models written as Pyro model/guide pairs.

The bottom layer: models, data sets and their own mathematics, and the model protocol
(:mod:`zoo.base`) that the guides and the algorithms read. Nothing here imports ``guides``,
``inference`` or the applications.
"""
import pyro as _pyro

# Each guide and model keeps its own parameters (no global name clashes between
# two guides of the same class); this is Pyro's recommended setting.
_pyro.settings.set(module_local_params=True)

from . import datasets  # noqa: E402
from .base import HOOKS, PyroModel, ZooModel, as_model, provides  # noqa: E402
from .datasets import list_datasets, load_dataset  # noqa: E402
from .glgae import GLGAE  # noqa: E402
from .mixture import BayesianGaussianMixture, BayesianGMM, GaussianMixture, GaussianMixtureModel, KMeans  # noqa: E402
from .linear_mixture import MixtureOfLinearModels  # noqa: E402
from .density import Histogram, KernelDensity, KNNDensity  # noqa: E402
from .registry import create_model, list_models, register_model  # noqa: E402
from .conjugate import ConjugateGaussian  # noqa: E402
from .vae import VAE, PlainVAE  # noqa: E402
from .gan import GAN  # noqa: E402
from .autoencoders import Autoencoder  # noqa: E402
from .sparse_coding import DictionaryLearning, SparseCoder, SparseCodingModel  # noqa: E402

__all__ = [
    "ZooModel", "PyroModel", "as_model", "provides", "HOOKS", "GaussianMixtureModel", "GLGAE", "GaussianMixture", "KMeans", "MixtureOfLinearModels",
    "KernelDensity", "Histogram", "KNNDensity", "create_model", "list_models", "register_model",
    "datasets", "load_dataset", "list_datasets", "BayesianGaussianMixture", "BayesianGMM", "ConjugateGaussian",
    "VAE", "PlainVAE", "GAN", "Autoencoder", "DictionaryLearning", "SparseCoder", "SparseCodingModel",
]
