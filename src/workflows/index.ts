export { runBundle, statusQuery, retryCollectionSignal } from './run-bundle';
export type { RunBundleInput, RunResult, RunStatus, Phase, OnHostLost } from './run-bundle';
export { runSweep, sweepStatusQuery, firingIdOf, cellWorkflowId } from './sweep';
export type { RunSweepInput, SweepCellInput, SweepCellStatus, SweepFiringResult, CellState } from './sweep';
export { fleet, fleetQuery, hostDrainSignal, hostLostSignal, leaseGrantedSignal, leaseRefusedSignal, leaseReleaseSignal, leaseRequestSignal } from './fleet';
export type { FleetInput } from './fleet';
