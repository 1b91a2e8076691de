"""faceswap_gan: swap the faces of speakers in video with an unsupervised conditional GAN.

Method: Dong, Neekhara, Wu, Guo, "Unsupervised Image-to-Image Translation with
Generative Adversarial Networks" (2017). See docs/ARCHITECTURE.md for the stages.
"""

__version__ = "0.1.0"
