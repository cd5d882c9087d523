package names

// Header is the header the plugin sets.
const Header = "X-Vendored-Ok"
