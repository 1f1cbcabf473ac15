"""BLE central (bleak) that collects sensor streams into the store. Built in a later issue."""
