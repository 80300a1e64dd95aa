"""Measuring SR: the literature's protocol (PSNR and SSIM on Y with the border shaved), NIQE
(no reference) and perceptual distances (VGG features, LPIPS)."""
