import numpy as np
from fireredasr_hf.feature_extraction_fireredasr import FireRedAsrFeatureExtractor as FE
FE._apply_cmvn = lambda self, f: ((f - np.asarray(self.cmvn_means, np.float32)) * np.asarray(self.cmvn_inverse_stds, np.float32)).astype(np.float32)
