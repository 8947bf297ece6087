// ES2024's String.prototype.isWellFormed, which Node 20 has; the workspace's lib stays ES2023
// so that no other ES2024 API (absent from Node 20) type-checks by accident.
interface String {
  isWellFormed(): boolean;
}
