"""Named pipeline presets (TOML), installed as ``faceswap_gan.pipelines``."""
