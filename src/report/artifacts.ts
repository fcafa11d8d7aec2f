/**
 * Image artifacts that records point to (toy density heat-maps, sample grids), read into data URLs
 * so the page and the figures stay self-contained.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import type { LoadedResults } from './records.js';

/** An artifact of a record: its image as a data URL, or the reason it cannot be shown. */
export interface LoadedArtifact {
  kind: string;
  /** The scenario of the record, so equal cell ids of different scenarios stay apart. */
  scenario: string;
  cellId: string;
  /** The path as the record gives it. */
  path: string;
  dataUrl: string | null;
  problem: string | null;
}

const MIME_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
};

/** Largest image embedded, in bytes; bigger files are listed but not inlined, to keep the page small. */
const MAX_ARTIFACT_BYTES = 2_000_000;

/**
 * Reads every artifact the records list. A relative path is tried against the record file's folder,
 * then against the results folder. Missing files, unsupported formats and files over 2 MB are
 * returned with a `problem` instead of a data URL.
 */
export async function loadArtifacts(loaded: LoadedResults): Promise<LoadedArtifact[]> {
  const artifacts: LoadedArtifact[] = [];
  for (const set of loaded.sets) {
    for (const run of set.records) {
      const references = Array.isArray(run.record.artifacts) ? run.record.artifacts : [];
      for (const reference of references) {
        if (typeof reference?.kind !== 'string' || typeof reference?.path !== 'string') {
          artifacts.push({
            kind: 'invalid',
            scenario: set.scenarioName,
            cellId: run.record.cellId,
            path: JSON.stringify(reference),
            dataUrl: null,
            problem: 'artifact entry lacks a string "kind" and "path"',
          });
          continue;
        }
        const artifact = await loadArtifact(reference.kind, reference.path, run.record.cellId, [path.dirname(run.file), loaded.resultsDir]);
        artifacts.push({ ...artifact, scenario: set.scenarioName });
      }
    }
  }
  return artifacts;
}

async function loadArtifact(kind: string, artifactPath: string, cellId: string, folders: string[]): Promise<Omit<LoadedArtifact, 'scenario'>> {
  const base = { kind, cellId, path: artifactPath };
  const mime = MIME_TYPES[path.extname(artifactPath).toLowerCase()];
  if (mime === undefined) {
    return { ...base, dataUrl: null, problem: `unsupported image format; supported: ${Object.keys(MIME_TYPES).join(', ')}` };
  }
  const candidates = path.isAbsolute(artifactPath) ? [artifactPath] : folders.map((folder) => path.join(folder, artifactPath));
  for (const candidate of candidates) {
    let size: number;
    try {
      size = (await stat(candidate)).size;
    } catch {
      continue;
    }
    if (size > MAX_ARTIFACT_BYTES) {
      return { ...base, dataUrl: null, problem: `file is ${size} bytes, over the ${MAX_ARTIFACT_BYTES}-byte limit for embedding` };
    }
    const bytes = await readFile(candidate);
    return { ...base, dataUrl: `data:${mime};base64,${bytes.toString('base64')}`, problem: null };
  }
  return { ...base, dataUrl: null, problem: `file not found (looked in ${candidates.join(', ')})` };
}
