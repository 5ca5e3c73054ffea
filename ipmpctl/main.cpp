#include <iostream>

#include "ipmpctl.hpp"

int main(int argc, char** argv) { return ipmpctl::main(argc, argv, std::cout, std::cerr); }
