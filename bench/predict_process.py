"""The PyTorch counterpart of one whole `cnnviz predict MODEL IMAGE` process:
start Python, import torch, build the network from the .h5, read a PNG,
classify it. usage: predict_process.py MODEL.h5 IMAGE.png"""
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from keras_torch import KerasChain

net = KerasChain(sys.argv[1]).eval()
img = np.asarray(Image.open(sys.argv[2]).convert("L"), dtype=np.float32) / 255.0
with torch.inference_mode():
    p = net(torch.tensor(img).reshape(1, 28, 28, 1))
print(int(p.argmax()))
