"""`thyrovid train`: the command and its run (`train`), the epoch (`engine`), on-device
augmentation (`augment`) and the files a run writes (`runfolder`).
"""
