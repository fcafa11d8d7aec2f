/**
 * Image grids for samples and inpainting results, laid out as torchvision's `make_grid` and
 * `save_image` do with the defaults EBFlow's reference keeps. A row has a fixed number of images,
 * with 2 pixels of black padding around and between them. Each 8-bit pixel value p is shown as
 * p/256 in [0, 1), stored as floor(255·p/256 + 0.5).
 */
import type { RasterImage } from './png.js';

/** A batch of 8-bit images in NHWC order. */
export interface ImageBatch {
  /** count·H·W·C bytes, values 0–255. */
  pixels: Uint8Array;
  count: number;
  /** [H, W, C] of one image. */
  imageShape: [number, number, number];
}

export interface GridOptions {
  /** Images per row; default 10. */
  perRow?: number;
  /** Padding in pixels around and between images; default 2. */
  padding?: number;
}

/** Returns the display byte of pixel value p: floor(255·p/256 + 0.5), the reference's p/256 scaling. */
export function displayValue(pixel: number): number {
  return Math.floor((255 * pixel) / 256 + 0.5);
}

/**
 * Lays the images of `batch` out row by row, `perRow` to a row, as one raster with 1 channel for
 * grey images and 3 for colour ones. Empty grid cells stay black. O(count·H·W·C).
 */
export function imageGrid(batch: ImageBatch, options: GridOptions = {}): RasterImage {
  const perRow = options.perRow ?? 10;
  const padding = options.padding ?? 2;
  const [height, width, channels] = batch.imageShape;
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`image grid: images must have 1 or 3 channels, received imageShape [${batch.imageShape.join(', ')}]`);
  }
  if (!Number.isInteger(perRow) || perRow < 1 || !Number.isInteger(padding) || padding < 0) {
    throw new RangeError(`image grid: perRow must be a positive integer and padding a non-negative integer, received ${perRow} and ${padding}`);
  }
  const imageBytes = height * width * channels;
  if (!Number.isInteger(batch.count) || batch.count < 1 || batch.pixels.length !== batch.count * imageBytes) {
    throw new RangeError(
      `image grid: ${batch.count} images of shape [${batch.imageShape.join(', ')}] need ${batch.count * imageBytes} bytes, received ${batch.pixels.length}`,
    );
  }

  const columns = Math.min(perRow, batch.count);
  const rows = Math.ceil(batch.count / perRow);
  const gridWidth = columns * (width + padding) + padding;
  const gridHeight = rows * (height + padding) + padding;
  const pixels = new Uint8Array(gridWidth * gridHeight * channels);
  for (let n = 0; n < batch.count; n++) {
    const top = padding + Math.floor(n / perRow) * (height + padding);
    const left = padding + (n % perRow) * (width + padding);
    for (let i = 0; i < height; i++) {
      for (let j = 0; j < width; j++) {
        for (let c = 0; c < channels; c++) {
          const source = n * imageBytes + (i * width + j) * channels + c;
          const target = ((top + i) * gridWidth + left + j) * channels + c;
          pixels[target] = displayValue(batch.pixels[source]);
        }
      }
    }
  }
  return { width: gridWidth, height: gridHeight, channels, pixels };
}
