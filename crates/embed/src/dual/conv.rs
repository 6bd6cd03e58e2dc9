//! The image tower's convolution as custom CPU ops: im2col forward and col2im backward, so
//! that both directions are matrix products.

use super::*;

/// 3×3 convolution with stride 2 and zero padding 1 on NHWC input, as im2col + matmul;
/// `weight` is `(9 · C_in) × C_out` in (dy, dx, channel) order. H and W must be even.
pub fn conv3x3_stride2(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    let (ho, wo) = (h / 2, w / 2);
    let out_c = weight.dim(1)?;
    let patches = x.contiguous()?.apply_op1(Im2Col)?.reshape((b * ho * wo, 9 * c))?;
    patches.matmul(weight)?.broadcast_add(bias)?.reshape((b, ho, wo, out_c))
}

pub(super) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => Err(candle_core::Error::Msg(format!("{op} needs a contiguous f32 tensor"))),
    }
}

/// The patches of a 3×3, stride 2, padding 1 convolution: `[B, H, W, C]` →
/// `[B, H/2, W/2, 9·C]` (a candle op whose gradient is [`Col2Im`]).
struct Im2Col;

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col-3x3-s2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = l.shape().dims4()?;
        let src = f32_slice(s, l, self.name())?;
        let (ho, wo) = (h / 2, w / 2);
        let mut out = vec![0f32; b * ho * wo * 9 * c];
        out.par_chunks_mut((ho * wo * 9 * c).max(1)).enumerate().for_each(|(bi, o)| {
            let img = &src[bi * h * w * c..(bi + 1) * h * w * c];
            for oy in 0..ho {
                for ox in 0..wo {
                    let base = (oy * wo + ox) * 9 * c;
                    for dy in 0..3 {
                        // padded row 2·oy + dy is input row 2·oy + dy − 1
                        let Some(iy) = (2 * oy + dy).checked_sub(1).filter(|&y| y < h) else { continue };
                        for dx in 0..3 {
                            let Some(ix) = (2 * ox + dx).checked_sub(1).filter(|&x| x < w) else { continue };
                            let k = base + (dy * 3 + dx) * c;
                            let from = (iy * w + ix) * c;
                            o[k..k + c].copy_from_slice(&img[from..from + c]);
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, ho, wo, 9 * c))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (_, h, w, _) = arg.dims4()?;
        Ok(Some(grad.contiguous()?.apply_op1(Col2Im { h, w })?))
    }
}

/// The adjoint of [`Im2Col`]: sums patch values back onto the `[B, h, w, C]` input grid.
struct Col2Im {
    h: usize,
    w: usize,
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im-3x3-s2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, ho, wo, c9) = l.shape().dims4()?;
        let (h, w, c) = (self.h, self.w, c9 / 9);
        let src = f32_slice(s, l, self.name())?;
        let mut out = vec![0f32; b * h * w * c];
        out.par_chunks_mut((h * w * c).max(1)).enumerate().for_each(|(bi, img)| {
            let cols = &src[bi * ho * wo * c9..(bi + 1) * ho * wo * c9];
            for oy in 0..ho {
                for ox in 0..wo {
                    let base = (oy * wo + ox) * c9;
                    for dy in 0..3 {
                        let Some(iy) = (2 * oy + dy).checked_sub(1).filter(|&y| y < h) else { continue };
                        for dx in 0..3 {
                            let Some(ix) = (2 * ox + dx).checked_sub(1).filter(|&x| x < w) else { continue };
                            let k = base + (dy * 3 + dx) * c;
                            let to = (iy * w + ix) * c;
                            for (o, v) in img[to..to + c].iter_mut().zip(&cols[k..k + c]) {
                                *o += v;
                            }
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, h, w, c))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Im2Col)?))
    }
}
