/**
 * The five training objectives by name: `ml`, `sml`, `ssm`, `dsm`, `fdssm`.
 */
import { dsmObjective } from './dsm.js';
import { fdssmObjective } from './fdssm.js';
import { mlObjective } from './ml.js';
import { OBJECTIVE_NAMES, type Objective, type ObjectiveName } from './objective.js';
import { smlObjective } from './sml.js';
import { ssmObjective } from './ssm.js';

const OBJECTIVES: Record<ObjectiveName, Objective> = {
  ml: mlObjective,
  sml: smlObjective,
  ssm: ssmObjective,
  dsm: dsmObjective,
  fdssm: fdssmObjective,
};

/** Returns the objective called `name`, or raises an error listing the allowed names. */
export function getObjective(name: string): Objective {
  if (!(OBJECTIVE_NAMES as readonly string[]).includes(name)) {
    throw new Error(`getObjective: unknown objective "${name}"; expected one of ${OBJECTIVE_NAMES.join(', ')}`);
  }
  return OBJECTIVES[name as ObjectiveName];
}

export { dsmObjective, fdssmObjective, mlObjective, smlObjective, ssmObjective };
