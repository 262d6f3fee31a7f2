#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s /name\n", argv[0]); return 2; }
    const int SIZE = 4096;
    int fd = shm_open(argv[1], O_CREAT | O_RDWR, 0666);
    if (fd == -1) { perror("shm_open"); return 1; }
    if (ftruncate(fd, SIZE) == -1) { perror("ftruncate"); return 1; }
    char *ptr = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) { perror("mmap"); return 1; }
    strcpy(ptr, "This is writer!!!");
    munmap(ptr, SIZE);
    close(fd);
    return 0;
}
