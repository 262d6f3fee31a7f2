#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s 0xKEY\n", argv[0]); return 2; }
    char *end;
    key_t key = (key_t)strtoul(argv[1], &end, 16);
    if (*end != '\0') { fprintf(stderr, "bad key %s\n", argv[1]); return 2; }
    int shmid = shmget(key, 4096, IPC_CREAT | 0666);
    if (shmid == -1) { perror("shmget"); return 1; }
    char *str = shmat(shmid, NULL, 0);
    if (str == (char *)-1) { perror("shmat"); return 1; }
    strcpy(str, "This is writer!!!");
    if (shmdt(str) == -1) { perror("shmdt"); return 1; }
    return 0;
}
